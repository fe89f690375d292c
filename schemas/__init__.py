"""The customer CSV's pandera schema and the Affelios API contract (openapi.yaml)."""
