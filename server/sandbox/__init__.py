"""Stand-ins for the outside world (payer APIs, clearinghouse): real HTTP servers on loopback, with fault injection.

Imports nothing from the rest of `server` (except the pure domain), so it could be deleted without the service noticing.
"""
