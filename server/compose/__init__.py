"""Composition of each capability (payer clients, estimates, eligibility) from settings; `server/app.py` calls them."""
