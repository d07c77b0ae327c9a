"""E-mail notifications: an outbox filled with the event, a sender that delivers by SMTP."""
