"""Full-text search: full reports in the caller's scope, publications for the rest.

Snippets come from the matched row's own text: a report section only when the caller may
read the full report, otherwise a publication section, which is a snapshot of consented
text. Nothing unconsented can surface, in a hit or in a snippet.
"""

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, func, literal, literal_column, table, text
from sqlalchemy import select as core_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.consent import service as consent
from ctcp.consent.models import Publication, PublicationSection
from ctcp.core.pagination import Page
from ctcp.reports import service as reports
from ctcp.reports.models import ReportSection, VisitReport
from ctcp.search.schemas import SearchHit

MARK_START, MARK_END = "<mark>", "</mark>"
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchFilters:
    """What to search for: the words as typed (the caller checks their length)."""

    q: str


def fts5_query(q: str) -> str | None:
    """Words only, each quoted: the caller's text never reaches FTS5's query syntax."""
    words = WORD.findall(q)
    return " ".join(f'"{word}"' for word in words[:12]) or None


def _sqlite_hits(fts: str, model: Any, owner: Any, allowed: Any, query: str, limit: int) -> Any:
    index = table(fts, column("rowid"))
    snippet = func.snippet(literal_column(fts), 1, MARK_START, MARK_END, "…", 16)
    return (
        core_select(
            owner, model.id, model.area, model.title, snippet, literal_column(f"bm25({fts})")
        )
        .select_from(index)
        .join(model, literal_column(f"{model.__tablename__}.rowid") == index.c.rowid)
        .where(text(f"{fts} MATCH :match").bindparams(match=query), owner.in_(allowed))
        .order_by(literal_column(f"bm25({fts})"))
        .limit(limit)
    )


def _postgresql_hits(model: Any, owner: Any, allowed: Any, q: str, limit: int) -> Any:
    query = func.plainto_tsquery("simple", q)
    document = func.to_tsvector("simple", model.title + literal(" ") + model.body)
    snippet = func.ts_headline(
        "simple",
        model.body,
        query,
        f"StartSel={MARK_START},StopSel={MARK_END},MaxWords=30,MinWords=8,MaxFragments=1",
    )
    rank = func.ts_rank(document, query)
    return (
        core_select(owner, model.id, model.area, model.title, snippet, rank)
        .where(document.op("@@")(query), owner.in_(allowed))
        .order_by(rank.desc())
        .limit(limit)
    )


async def search(
    session: AsyncSession,
    access: Access,
    filters: SearchFilters,
    limit: int,
    *,
    report_access: Access | None,
) -> Page[SearchHit]:
    """The best `limit` hits in what the caller may read (`access`: its publication read;
    `report_access`: its report read, if any), ranked: one page, no next one. Audited as
    `search` with the query and the sections hit."""
    hits = await _best_hits(
        session, q=filters.q, report_access=report_access, publication_access=access, limit=limit
    )
    audit.record(
        session,
        access.audit,
        "search",
        object_type="search",
        details={"q": filters.q, "hits": [str(h.section_id) for h in hits]},
        read=True,
    )
    return Page[SearchHit](items=hits, next_cursor=None)


async def _best_hits(
    session: AsyncSession,
    *,
    q: str,
    report_access: Access | None,
    publication_access: Access,
    limit: int,
) -> list[SearchHit]:
    """The best hits in what the caller may read, each with a highlighted snippet."""
    backend = (await session.connection()).dialect.name
    match = fts5_query(q)
    if backend == "sqlite" and match is None:
        return []
    sources: list[tuple[str, str, Any, Any, Any]] = []
    if report_access is not None:
        readable = reports.readable_reports(report_access).with_only_columns(col(VisitReport.id))
        sources.append(
            ("report", "report_sections_fts", ReportSection, col(ReportSection.report_id), readable)
        )
    published = consent.readable_publications(publication_access).with_only_columns(
        col(Publication.id)
    )
    sources.append(
        (
            "publication",
            "publication_sections_fts",
            PublicationSection,
            col(PublicationSection.publication_id),
            published,
        )
    )
    hits: list[tuple[float, SearchHit]] = []
    for kind, fts, model, owner, allowed in sources:
        statement = (
            _sqlite_hits(fts, model, owner, allowed, match or "", limit)
            if backend == "sqlite"
            else _postgresql_hits(model, owner, allowed, q, limit)
        )
        for owner_id, section_id, area, title, snippet, rank in (
            await session.exec(statement)
        ).all():
            # bm25 is lower-is-better; ts_rank higher-is-better: one scale for both.
            score = -float(rank) if backend == "sqlite" else float(rank)
            hit = SearchHit(
                type=kind,
                id=owner_id,
                section_id=section_id,
                area=area,
                title=title,
                snippet=snippet,
            )
            hits.append((score, hit))
    hits.sort(key=lambda pair: pair[0], reverse=True)
    return [hit for _, hit in hits[:limit]]
