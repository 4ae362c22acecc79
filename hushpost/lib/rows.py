"""Rows written and read on the hot paths without the ORM's query compiler.

A send writes a message, a delivery and a notification per addressee, and looks each
addressee's account up; an SMTP message through the gateway does the same. Compiled by
the ORM, each of those statements costs three to eight times the CPU of the statement
itself (measured: a one-row INSERT 0.20 ms against 0.07 ms, a look-up of one account
0.41 ms against 0.05 ms). Here the statement is written out once per model and database,
from the model's own metadata, and each call only prepares its values the way the ORM
does (``get_db_prep_save``), so the row is the one ``save()`` would have written.

``insert`` does what ``Model.save_base`` does for a new row, in the same order: the
``pre_save`` signal, each field's own ``pre_save`` (``auto_now_add`` stamps the time there),
the INSERT, then ``post_save``. It refuses a model with its own ``save()`` or a file field
(whose ``pre_save`` writes the file). A row whose database-computed column was given a
value, or a database that cannot return what it computed (SQLite before 3.35), is saved by
the ORM instead.

Inside ``together()`` (on PostgreSQL), the rows ``insert`` is given are written at the end of
the block in one statement: a data-modifying ``WITH`` part per table, each one multi-row
INSERT in the order the rows came, and a row that refers to a row of an earlier part (a
delivery to its message) given that row's key as the statement makes it. A send's message,
deliveries, tasks, notifications and audit event are one round trip instead of five or more.
A table's rows take their keys in the order they came, which the worker's queue relies on (a
new recipient's Password Notification before their Secure Messaging Notification): PostgreSQL
runs a statement's ``WITH`` parts in no set order, so two parts writing one table would not
keep it. Keys are set, and ``post_save`` sent, once the statement has run; code that needs a
key before then asks ``written(obj)``, which writes what waits first.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.expressions import DatabaseDefault
from django.db.models.signals import post_save, pre_save
from django.db.transaction import mark_for_rollback_on_error


class _Insert:
    def __init__(self, model, connection):
        quote = connection.ops.quote_name
        meta = model._meta
        # The key is the database's where it numbers the rows (an AutoField); a key the
        # model gives itself (a UUID's default) is written like any other column.
        fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
        # Columns whose default the database computes (``db_default``) are left to it and
        # read back, with the numbered key, as the ORM does.
        self.written = [f for f in fields if not f.has_db_default()]
        self.returned = ([meta.auto_field] if meta.auto_field else []) + [
            f for f in fields if f.has_db_default()]
        self.computed = [f for f in self.returned if f is not meta.auto_field]
        self.usable = connection.features.can_return_columns_from_insert or not self.returned
        returning = (" RETURNING " + ", ".join(quote(f.column) for f in self.returned)) if self.returned else ""
        # Only names from the model's metadata go into the text; every value is a parameter.
        self.into = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in self.written)})"
        self.sql = f"{self.into} VALUES ({', '.join(['%s'] * len(self.written))}){returning}"
        self.returning = [quote(f.column) for f in self.returned]  # in ``together()``'s statement
        self.converters = [
            (f, col, connection.ops.get_db_converters(col) + f.get_db_converters(connection))
            for f, col in ((f, f.get_col(meta.db_table)) for f in self.returned)]


_inserts: dict[tuple[type, str], _Insert] = {}


def _plain(model) -> bool:
    """Whether saving a new row of the model is what ``insert`` does."""
    return (model.save is models.Model.save and not model._meta.auto_created
            and not any(isinstance(f, models.FileField) for f in model._meta.concrete_fields))


def insert(obj) -> None:
    """Write ``obj`` as a new row, as ``obj.save()`` would (its key and database defaults set)."""
    model = type(obj)
    if not _plain(model):
        raise TypeError(f"{model.__name__} changes what saving does: save it through the ORM")
    connection = connections[model.objects.db]
    statement = _inserts.get((model, connection.alias))
    if statement is None:
        statement = _inserts[(model, connection.alias)] = _Insert(model, connection)
    meta = model._meta
    if (not statement.usable or (meta.auto_field is not None and obj.pk is not None)
            or any(not isinstance(getattr(obj, f.attname), DatabaseDefault) for f in statement.computed)):
        obj.save(force_insert=True)
        return
    batch = _batch.get()
    # A row without a numbered key that reads columns back could not be matched to them in a
    # statement of many rows: it is written at once, as are rows past a statement's size.
    if batch is not None and (batch.connection is not connection or meta.private_fields
                              or (meta.auto_field is None and statement.returned)
                              or batch.values > _MOST_VALUES):
        if batch.connection is connection:  # written now, and this row on its own
            batch.flush()
        batch = None
    waiting = _prepare_related(obj, batch, statement.into)
    if pre_save.has_listeners(model):
        pre_save.send(sender=model, instance=obj, raw=False, using=connection.alias, update_fields=None)
    if meta.auto_field is None and obj.pk is None:
        obj.pk = meta.pk.get_pk_value_on_save(obj)
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in statement.written]

    def done(returned) -> None:
        for field, _ in waiting:  # the rows it refers to were written first, their keys set
            setattr(obj, field.attname, field.get_cached_value(obj).pk)
        for (field, col, chain), value in zip(statement.converters, returned, strict=True):
            for convert in chain:
                value = convert(value, col, connection)
            setattr(obj, field.attname, value)
        obj._state.adding = False
        obj._state.db = connection.alias
        if post_save.has_listeners(model):
            post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False,
                           using=connection.alias)

    if batch is not None:
        refs = {statement.written.index(field): row for field, row in waiting}
        batch.add(obj, statement.into, values, refs, statement.returning, meta.auto_field is not None, done)
        return
    with mark_for_rollback_on_error(connection.alias), connection.cursor() as cursor:
        cursor.execute(statement.sql, values)
        returned = cursor.fetchone() if statement.returned else ()
    done(returned)


def _prepare_related(obj, batch, into: str) -> list[tuple[models.Field, tuple[int, int]]]:
    """Django's check that every related object is saved (``_prepare_related_fields_for_save``),
    except that one waiting in ``batch`` to be written is allowed, its key being the
    statement's. Returns those fields, each with the waiting row it refers to."""
    waiting = []
    if batch is not None:
        for field in obj._meta.concrete_fields:
            if field.is_relation and field.is_cached(obj):
                related = field.get_cached_value(obj, default=None)
                row = batch.row_of(related) if related is not None and related.pk is None else None
                if row is not None and field.target_field is related._meta.auto_field:
                    waiting.append((field, row, related))
        if waiting and not batch.can_refer(into, [row for _, row, _ in waiting]):
            # A row of a table whose part comes first refers to a later one: what waits is
            # written now, and this row refers to it by its key like any saved row.
            batch.flush()
            waiting = []
    for field, _, _ in waiting:  # hidden from Django's check, which refuses an unsaved object
        field.delete_cached_value(obj)
    try:
        obj._prepare_related_fields_for_save(operation_name="save")
    finally:
        for field, _, related in waiting:
            field.set_cached_value(obj, related)
    return [(field, row) for field, row, _ in waiting]


# A statement of ``together()`` takes at most about this many values (PostgreSQL's limit is
# 65,535): a send to a very long list of addressees is written in several.
_MOST_VALUES = 20_000


class _Part:
    """The rows of one table waiting in ``together()``'s statement: one multi-row INSERT, which
    numbers its rows in the order its VALUES list them (as Django's ``bulk_create`` relies on),
    so the n-th key of the part is the n-th row's."""

    def __init__(self, into: str, returning: list[str], keyed: bool):
        self.into = into
        self.returning = returning  # quoted columns; the first is the numbered key if keyed
        self.keyed = keyed
        self.rows: list[tuple[list, dict[int, tuple[int, int]]]] = []


class _Batch:
    """Rows waiting to be written in one statement (``together``)."""

    def __init__(self, connection):
        self.connection = connection
        self.parts: list[_Part] = []
        self.by_into: dict[str, int] = {}
        self.index: dict[int, tuple[int, int]] = {}  # id() of a waiting object -> (part, row)
        self.order: list[tuple[int, int, object]] = []  # (part, row, then) as the rows came
        self.values = 0

    def row_of(self, obj) -> tuple[int, int] | None:
        return self.index.get(id(obj))

    def can_refer(self, into: str, rows: list[tuple[int, int]]) -> bool:
        """Whether a row of ``into``'s part may refer to ``rows``: only to parts before its own
        (a statement's WITH part reads only the ones before it)."""
        own = self.by_into.get(into, len(self.parts))
        return all(part < own and self.parts[part].keyed for part, _ in rows)

    def add(self, obj, into: str, values: list, refs: dict[int, tuple[int, int]], returning: list[str],
            keyed: bool, then) -> None:
        at = self.by_into.get(into)
        if at is None:
            at = self.by_into[into] = len(self.parts)
            self.parts.append(_Part(into, returning, keyed))
        part = self.parts[at]
        row = (at, len(part.rows))
        if obj is not None:
            self.index[id(obj)] = row
        part.rows.append((values, refs))
        self.order.append((*row, then))
        self.values += len(values)

    def flush(self) -> None:
        parts, order = self.parts, self.order
        self.parts, self.by_into, self.index, self.order, self.values = [], {}, {}, [], 0
        if not parts:
            return
        sql_parts, params, reads = [], [], []
        for n, part in enumerate(parts):
            listed = []
            for values, refs in part.rows:
                slots = []
                for i, value in enumerate(values):
                    if i in refs:  # the key of a row of an earlier part: its part's n-th key
                        at, nth = refs[i]
                        slots.append(f'(SELECT "k" FROM r{at} ORDER BY "k" OFFSET {nth} LIMIT 1)')  # noqa: S608 - numbers only
                    else:
                        slots.append("%s")
                        params.append(value)
                listed.append("(" + ", ".join(slots) + ")")
            returning = [f'{c} AS "k"' if part.keyed and not i else c for i, c in enumerate(part.returning)]
            sql_parts.append(f"r{n} AS ({part.into} VALUES {', '.join(listed)}"
                             + (f" RETURNING {', '.join(returning)})" if returning else ")"))
            names = ['"k"' if part.keyed and not i else c for i, c in enumerate(part.returning)]
            reads += [f'(SELECT array_agg({c} ORDER BY "k") FROM r{n})' for c in names]  # noqa: S608
        # Every part is written, whether the SELECT reads it or not (PostgreSQL runs each
        # data-modifying WITH part exactly once); it reads back, per part and column, what its
        # rows returned, in the order they were listed.
        sql = "WITH " + ", ".join(sql_parts) + " SELECT " + (", ".join(reads) or "1")  # noqa: S608
        with mark_for_rollback_on_error(self.connection.alias), self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            returned = cursor.fetchone()
        columns, at = [], 0
        for part in parts:
            columns.append(returned[at:at + len(part.returning)])
            at += len(part.returning)
        for n, nth, then in order:  # keys set and post_save sent in the order the rows came
            then(tuple(column[nth] for column in columns[n]))


_batch: ContextVar[_Batch | None] = ContextVar("hushpost_rows_batch", default=None)


@contextmanager
def together(using: str = DEFAULT_DB_ALIAS):
    """Rows inserted inside are written in one statement at its end (PostgreSQL; elsewhere each
    is written at once, as without it). Nothing is written if the block raises."""
    db = connections[using]
    if db.vendor != "postgresql" or _batch.get() is not None:
        yield
        return
    batch = _Batch(db)
    token = _batch.set(batch)
    try:
        yield
        batch.flush()
    finally:
        _batch.reset(token)


def written(obj=None) -> None:
    """Write whatever waits in ``together()``'s statement now (so ``obj``'s key is known)."""
    batch = _batch.get()
    if batch is not None and (obj is None or batch.row_of(obj) is not None):
        batch.flush()


def defer(into: str, values: list, returning: list[str], then) -> bool:
    """Let a row written by the caller's own INSERT (``into``: ``INSERT INTO t (columns)``)
    wait for ``together()``'s statement; ``returning``: the columns to read back, the first
    of them the table's numbered key, ``then`` called with their values once it has run.
    False outside one: write it yourself."""
    batch = _batch.get()
    if batch is None:
        return False
    if batch.values > _MOST_VALUES:
        batch.flush()
    quote = batch.connection.ops.quote_name
    batch.add(None, into, values, {}, [quote(c) for c in returning], bool(returning), then)
    return True


_finds: dict[tuple[type, tuple[str, ...], str], str] = {}


def find_id(model, **equal) -> int | None:
    """The key of the first row (lowest key) whose columns equal the values given, or None."""
    connection = connections[model.objects.db]
    names = tuple(equal)
    sql = _finds.get((model, names, connection.alias))
    if sql is None:
        quote, meta = connection.ops.quote_name, model._meta
        where = " AND ".join(f"{quote(meta.get_field(n).column)} = %s" for n in names)
        pk = quote(meta.pk.column)
        sql = _finds[(model, names, connection.alias)] = (
            f"SELECT {pk} FROM {quote(meta.db_table)} WHERE {where} ORDER BY {pk} LIMIT 1")  # noqa: S608
    values = [model._meta.get_field(n).get_db_prep_value(v, connection) for n, v in equal.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return row[0] if row else None


class Columns:
    """One model's columns in a hand-written SELECT (``alias."column", ...`` in the model's
    order), and the instance built from a row of them, converted as the ORM converts them:
    the object is the one the ORM would have built. Used by the statements every request
    (``accounts.sessions``) and every page of a message (``messaging.sql``) run."""

    def __init__(self, model: type[models.Model], alias: str):
        self.model = model
        fields = model._meta.concrete_fields
        self.attnames = [f.attname for f in fields]
        self.pk = fields.index(model._meta.pk)
        self.cols = [f.get_col(alias) for f in fields]
        self.sql = ", ".join(f'{alias}."{f.column}"' for f in fields)
        # Per kind of database, found once as the ORM finds them for each query.
        self._converters: dict[str, list[tuple[int, list, models.Expression]]] = {}

    def build(self, row: tuple, start: int) -> models.Model | None:
        """The instance whose columns begin at ``start``; None where an outer join found nothing."""
        values = list(row[start:start + len(self.cols)])
        if values[self.pk] is None:
            return None
        db = connections[connection.alias]
        found = self._converters.get(db.vendor)
        if found is None:
            found = self._converters[db.vendor] = [
                (i, converters, col) for i, col in enumerate(self.cols)
                if (converters := db.ops.get_db_converters(col) + col.get_db_converters(db))
            ]
        for i, converters, col in found:
            for convert in converters:
                values[i] = convert(values[i], col, db)
        return self.model.from_db(db.alias, self.attnames, values)


def build(parts: tuple[Columns, ...], row: tuple) -> list[models.Model | None]:
    """The instances of a row whose columns are ``parts``' one after the other."""
    start, built = 0, []
    for part in parts:
        built.append(part.build(row, start))
        start += len(part.cols)
    return built
