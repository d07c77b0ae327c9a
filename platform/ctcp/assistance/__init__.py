"""Technical assistance: needs, requests, offers and matching; capacity consultations."""
