"""Sending: the wire (one request, one answer), the submitter (attempts, retries, the
stop switch) and the pace."""
