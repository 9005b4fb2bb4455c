"""Alembic environment for the core and every enabled plugin's branch."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not config.attributes.get("lms_quiet"):
    # disable_existing_loggers=False: do not silence the application's loggers.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def include_object(obj, name, type_, reflected, compare_to):
    """Ignore tables that exist in the database but belong to no loaded model, and a model's
    SQLite-only constraint (``info`` ``{"only_on": "sqlite"}``) missing from the database.

    Without the first, autogenerate run with a plugin disabled would propose dropping
    that plugin's tables. The second: the ledgers' session keys are foreign keys on SQLite
    and statement triggers on PostgreSQL (migration 0032sessionkey); the migration tests
    check that SQLite has them.
    """
    if type_ == "table" and reflected and compare_to is None:
        return False
    return not (not reflected and compare_to is None and getattr(obj, "info", {}).get("only_on") == "sqlite")


def render_item(type_, obj, autogen_context):
    """Render project column types as plain SQLAlchemy types in migration files.

    Migrations must not import application code (it changes; they must not).
    """
    if type_ == "type":
        from lms_core.db import UTCDateTime

        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if type(obj).__name__ == "JSON" and getattr(obj, "_variant_mapping", None):
            return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


def run_migrations_offline():
    context.configure(
        url=str(target_db.engine.url),
        target_metadata=target_db.metadata,
        literal_binds=True,
        include_object=include_object,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_as_batch", True)  # SQLite cannot ALTER most things
    conf_args.setdefault("compare_type", True)
    conf_args.setdefault("render_item", render_item)
    connectable = target_db.engine
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_db.metadata,
            include_object=include_object,
            **conf_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
