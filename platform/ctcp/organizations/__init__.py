"""Organizations: Member States, Compact entities and the Secretariat (the Casbin domains)."""
