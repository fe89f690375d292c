"""The wire: one request to the API and its answer, over an httpx transport."""
