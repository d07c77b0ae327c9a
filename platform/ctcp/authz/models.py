"""The Casbin rules table, loaded from policies/ by `ctcp policy load`."""

from sqlalchemy import Column, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel


class CasbinRule(SQLModel, table=True):
    __tablename__ = "casbin_rules"
    __table_args__ = (
        UniqueConstraint("ptype", "v0", "v1", "v2", "v3", "v4", "v5", name="uq_casbin_rules_line"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    ptype: str = Field(max_length=8, index=True)
    v0: str = Field(default="", max_length=64)
    v1: str = Field(default="", max_length=64)
    v2: str = Field(default="", max_length=64)
    v3: str = Field(default="", max_length=64)
    v4: str = Field(default="", max_length=64)
    v5: str = Field(default="", max_length=64)
