"""The change feed: what each Compact entity may read, as an ordered, resumable stream of
upserts and revokes (service.py), recorded in the unit of work that makes each change
(recorder.py), with signed webhook deliveries (webhooks.py)."""
