"""Consent events (append-only) and the publications they allow."""
