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
"""

from __future__ import annotations

from django.db import connection, connections, models
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
        self.sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in self.written)}) "  # noqa: S608
                    f"VALUES ({', '.join(['%s'] * len(self.written))}){returning}")
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
    obj._prepare_related_fields_for_save(operation_name="save")
    if pre_save.has_listeners(model):
        pre_save.send(sender=model, instance=obj, raw=False, using=connection.alias, update_fields=None)
    if meta.auto_field is None and obj.pk is None:
        obj.pk = meta.pk.get_pk_value_on_save(obj)
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in statement.written]
    with mark_for_rollback_on_error(connection.alias), connection.cursor() as cursor:
        cursor.execute(statement.sql, values)
        returned = cursor.fetchone() if statement.returned else ()
    for (field, col, chain), value in zip(statement.converters, returned, strict=True):
        for convert in chain:
            value = convert(value, col, connection)
        setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = connection.alias
    if post_save.has_listeners(model):
        post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False,
                       using=connection.alias)


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
