"""Prompt templates and their numbered versions.

Owns saving a template's content as a new version (or finding the identical one already saved),
listing versions, and deleting the versions no comparison run uses. A version used by a stored
run is never deleted: delete_template skips it and the foreign key refuses it anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, delete, distinct, func, select
from sqlalchemy.orm import Session, contains_eager

from studio.store.base import StoreBase, insert_unless_raced, rowcount
from studio.store.checks import check_template
from studio.store.records import TemplateVersion
from studio.store.rows import newest_version, template_by_name, version_by_hash
from studio.store.schema import (
    ComparisonConfigRow,
    PromptTemplateRow,
    TemplateVersionRow,
    utcnow,
)


class PromptsMixin(StoreBase):
    """Save and read prompt template versions."""

    def save_template_version(self, name: str, content: str, content_hash: str) -> TemplateVersion:
        """Save `content` as the next version of template `name` (created if new).

        Idempotent: when this template already has a version with `content_hash`, that version
        is returned unchanged; otherwise the new version is numbered one past the newest.
        """
        check_template(name, content, content_hash)
        with self._session(f"save a version of template {name!r}", write=True) as session:
            template = _template_for_update(session, name)
            row = version_by_hash(session, template.id, content_hash)
            if row is None:
                row = TemplateVersionRow(
                    template=template,
                    version=newest_version(session, template.id) + 1,
                    content_hash=content_hash,
                    content=content,
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
            return to_template_version(row, _runs_using(session, row.id))

    def template_versions(self, name: str) -> list[TemplateVersion]:
        """Every stored version of template `name`, oldest first; [] for an unknown name."""
        stmt = (
            _versions_query()
            .where(PromptTemplateRow.name == name)
            .order_by(TemplateVersionRow.version)
        )
        with self._session(f"list versions of template {name!r}") as session:
            return [to_template_version(row, used) for row, used in session.execute(stmt)]

    def get_template_version(self, version_id: int) -> TemplateVersion | None:
        stmt = _versions_query().where(TemplateVersionRow.id == version_id)
        with self._session(f"read template version {version_id}") as session:
            found = session.execute(stmt).one_or_none()
            return None if found is None else to_template_version(*found)

    def latest_template_versions(self) -> list[TemplateVersion]:
        """The newest version of every template, ordered by template name."""
        newest = (
            select(
                TemplateVersionRow.template_id,
                func.max(TemplateVersionRow.version).label("version"),
            )
            .group_by(TemplateVersionRow.template_id)
            .subquery()
        )
        stmt = (
            _versions_query()
            .join(
                newest,
                (newest.c.template_id == TemplateVersionRow.template_id)
                & (newest.c.version == TemplateVersionRow.version),
            )
            .order_by(PromptTemplateRow.name)
        )
        with self._session("list the latest template versions") as session:
            return [to_template_version(row, used) for row, used in session.execute(stmt)]

    def delete_template(self, name: str) -> int:
        """Delete the versions of `name` no comparison run uses; returns how many went.

        The template itself goes too once none of its versions remain; while a used version
        remains, it and the template stay. An unknown name deletes nothing.
        """
        with self._session(f"delete template {name!r}", write=True) as session:
            template = template_by_name(session, name)
            if template is None:
                return 0
            unused = ~select(ComparisonConfigRow.id).where(_uses_version()).exists()
            deleted = rowcount(
                session.execute(
                    delete(TemplateVersionRow)
                    .where(TemplateVersionRow.template_id == template.id, unused)
                    .execution_options(synchronize_session=False)
                )
            )
            if newest_version(session, template.id) == 0:
                session.delete(template)
            return deleted


def to_template_version(row: TemplateVersionRow, used_by_runs: int) -> TemplateVersion:
    return TemplateVersion(
        id=row.id,
        template_name=row.template.name,
        version=row.version,
        content_hash=row.content_hash,
        content=row.content,
        created_at=row.created_at,
        used_by_runs=used_by_runs,
    )


def _uses_version() -> ColumnElement[bool]:
    return ComparisonConfigRow.template_version_id == TemplateVersionRow.id


def _versions_query() -> Select[Any]:
    """Versions joined to their template, each with the number of runs using it."""
    used_by_runs = (
        select(func.count(distinct(ComparisonConfigRow.run_id)))
        .where(_uses_version())
        .scalar_subquery()
    )
    return (
        select(TemplateVersionRow, used_by_runs)
        .join(TemplateVersionRow.template)
        .options(contains_eager(TemplateVersionRow.template))
    )


def _runs_using(session: Session, version_id: int) -> int:
    stmt = select(func.count(distinct(ComparisonConfigRow.run_id))).where(
        ComparisonConfigRow.template_version_id == version_id
    )
    return session.scalar(stmt) or 0


def _template_for_update(session: Session, name: str) -> PromptTemplateRow:
    """The template row, created if new and locked, so version numbers are handed out in turn.

    FOR UPDATE serializes writers on PostgreSQL; SQLite ignores it (its writers already are).
    """
    template = template_by_name(session, name)
    if template is None:
        template = insert_unless_raced(
            session,
            PromptTemplateRow(name=name, created_at=utcnow()),
            lambda: template_by_name(session, name),
        )
    session.execute(
        select(PromptTemplateRow.id).where(PromptTemplateRow.id == template.id).with_for_update()
    )
    return template
