"""A Prisma migration history of our own, shaped like real ones, for PostgreSQL, MySQL and SQLite.

A deterministic schema evolution (models, fields, enums, indexes, relations) is rendered step by
step as Prisma schemas; the SQL of each step is what the real Prisma CLI writes for it
(``prisma migrate diff --from-schema-datamodel A --to-schema-datamodel B --script``, which runs
offline for PostgreSQL and SQLite through the CLI's WebAssembly schema engine). The CLI cannot diff
MySQL offline, so MySQL steps are written in the form Prisma emits for MySQL (see
``MySQLWriter``). Between the generated steps come migrations of the kinds teams write by hand:
renames, views replaced with ``OR REPLACE``, functions and triggers, data backfills, temporary
tables, sequences, extensions, check constraints, partial and expression indexes, names longer
than 63 characters, ``DO`` blocks, folders named ``... copy``.

Built histories are cached under ``.build/prisma-corpus`` keyed by this file and the CLI version.
No third-party migration file is copied: every statement here comes from the CLI or this file.
"""
import concurrent.futures
import copy
import datetime
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile

from tests.harness.collection import REPO_ROOT

CLI_DIR = os.path.join(REPO_ROOT, "tests", "compat", "prisma-cli")
PRISMA_BIN = os.path.join(CLI_DIR, "node_modules", ".bin", "prisma")
CACHE_DIR = os.path.join(REPO_ROOT, ".build", "prisma-corpus")
PRISMA_STEPS = 124
SEED = 20250821

GENERATOR_BLOCK = """generator client {
  provider        = "prisma-client-js"
  engineType      = "client"
  previewFeatures = ["driverAdapters", "queryCompiler"]
}
"""

SCALARS = ("String", "Int", "BigInt", "Float", "Boolean", "DateTime", "Decimal", "Json")
MAX_NAME = {"postgresql": 63, "mysql": 64, "sqlite": 10000}


# --- the schema --------------------------------------------------------------------------------

class Field(object):
    def __init__(self, name, kind, optional=False, default=None, native=None, unique=False):
        self.name = name
        self.kind = kind          # a scalar above or an enum name
        self.optional = optional
        self.default = default    # None, 'autoincrement', 'now', or a literal (str/int/float/bool)
        self.native = native      # e.g. 'VarChar(120)'
        self.unique = unique


class Relation(object):
    def __init__(self, name, field, target, on_delete="Restrict", optional=False):
        self.name = name          # the relation name (also the scalar's prefix)
        self.field = field        # the foreign key scalar field
        self.target = target
        self.on_delete = on_delete
        self.optional = optional


class Model(object):
    def __init__(self, name):
        self.name = name
        self.fields = [Field("id", "Int", default="autoincrement")]
        self.indexes = []         # (fields tuple, map name or None)
        self.uniques = []         # (fields tuple, map name or None)
        self.relations = []

    def field(self, name):
        return next(f for f in self.fields if f.name == name)


class Schema(object):
    def __init__(self, provider):
        self.provider = provider
        self.models = []
        self.enums = {}           # name -> [values]

    def model(self, name):
        return next(m for m in self.models if m.name == name)

    def render(self):
        lines = ['datasource db {', '  provider = "%s"' % self.provider, '  url      = env("DATABASE_URL")', '}', '',
                 GENERATOR_BLOCK]
        for name, values in sorted(self.enums.items()):
            lines.append("enum %s {" % name)
            lines.extend("  %s" % v for v in values)
            lines.append("}\n")
        for model in self.models:
            lines.append("model %s {" % model.name)
            for field in model.fields:
                lines.append("  " + self._field_line(field))
            for relation in model.relations:
                fk_field = model.field(relation.field)
                actions = ", onDelete: %s" % relation.on_delete
                lines.append('  %s %s%s @relation("%s", fields: [%s], references: [id]%s)' % (
                    relation.name, relation.target, "?" if fk_field.optional else "", relation.name, relation.field, actions))
            for other in self.models:
                for relation in other.relations:
                    if relation.target == model.name:
                        lines.append('  back_%s %s[] @relation("%s")' % (relation.name, other.name, relation.name))
            for fields, name in model.indexes:
                lines.append("  @@index([%s]%s)" % (", ".join(fields), ', map: "%s"' % name if name else ""))
            for fields, name in model.uniques:
                lines.append("  @@unique([%s]%s)" % (", ".join(fields), ', map: "%s"' % name if name else ""))
            lines.append("}\n")
        return "\n".join(lines)

    def _field_line(self, field):
        parts = [field.name, field.kind + ("?" if field.optional else "")]
        if field.name == "id":
            parts.append("@id")
        if field.default == "autoincrement":
            parts.append("@default(autoincrement())")
        elif field.default == "now":
            parts.append("@default(now())")
        elif field.default is not None:
            parts.append("@default(%s)" % _prisma_literal(field))
        if field.unique:
            parts.append("@unique")
        if field.native and self.provider != "sqlite":
            parts.append("@db.%s" % field.native)
        return " ".join(parts)


def _prisma_literal(field):
    value = field.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if field.kind in SCALARS:
        return json.dumps(value)
    return value  # an enum value


# --- Prisma's MySQL form --------------------------------------------------------------------------

def prisma_name(model, fields, suffix, limit):
    """Prisma's default constraint name, shortened to the provider's limit as Prisma does."""
    base = "%s_%s" % (model, "_".join(fields))
    room = limit - len(suffix) - 1
    return "%s_%s" % (base[:room], suffix)


class MySQLWriter(object):
    """The SQL Prisma Migrate writes for MySQL between two schemas (the subset of changes the evolution makes)."""

    limit = MAX_NAME["mysql"]

    def __init__(self, before, after):
        self.before = before
        self.after = after

    def column(self, schema, field):
        kinds = {"String": "VARCHAR(191)", "Int": "INTEGER", "BigInt": "BIGINT", "Float": "DOUBLE", "Boolean": "BOOLEAN",
                 "DateTime": "DATETIME(3)", "Decimal": "DECIMAL(65, 30)", "Json": "JSON"}
        if field.kind in schema.enums:
            sql_type = "ENUM(%s)" % ", ".join("'%s'" % v for v in schema.enums[field.kind])
        elif field.native:
            sql_type = field.native.upper()
        else:
            sql_type = kinds[field.kind]
        text = "`%s` %s %s" % (field.name, sql_type, "NULL" if field.optional else "NOT NULL")
        if field.default == "autoincrement":
            text += " AUTO_INCREMENT"
        elif field.default == "now":
            text += " DEFAULT CURRENT_TIMESTAMP(3)"
        elif field.default is not None:
            text += " DEFAULT %s" % self.literal(field)
        return text

    @staticmethod
    def literal(field):
        value = field.default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        return "'%s'" % value

    def index_names(self, schema, model):
        names = {}
        for field in model.fields:
            if field.unique:
                names[prisma_name(model.name, [field.name], "key", self.limit)] = ("UNIQUE INDEX", (field.name,))
        for fields, name in model.uniques:
            names[name or prisma_name(model.name, fields, "key", self.limit)] = ("UNIQUE INDEX", tuple(fields))
        for fields, name in model.indexes:
            names[name or prisma_name(model.name, fields, "idx", self.limit)] = ("INDEX", tuple(fields))
        return names

    def foreign_keys(self, schema):
        keys = {}
        for model in schema.models:
            for relation in model.relations:
                name = prisma_name(model.name, [relation.field], "fkey", self.limit)
                keys[name] = (model.name, relation)
        return keys

    def script(self):
        before, after = self.before, self.after
        out = []
        old_fks, new_fks = self.foreign_keys(before), self.foreign_keys(after)
        before_models = dict((m.name, m) for m in before.models)
        after_models = dict((m.name, m) for m in after.models)
        changed_fks = [n for n in old_fks if n in new_fks and old_fks[n][1].on_delete != new_fks[n][1].on_delete]
        for name in sorted(old_fks):
            if name not in new_fks or name in changed_fks:
                out.append("-- DropForeignKey\nALTER TABLE `%s` DROP FOREIGN KEY `%s`;" % (old_fks[name][0], name))
        for name in sorted(changed_fks):
            out.append("-- DropIndex\nDROP INDEX `%s` ON `%s`;" % (name, old_fks[name][0]))
        for model_name, model in before_models.items():
            if model_name not in after_models:
                continue
            old_idx, new_idx = self.index_names(before, model), self.index_names(after, after_models[model_name])
            for name in sorted(old_idx):
                if name not in new_idx:
                    out.append("-- DropIndex\nDROP INDEX `%s` ON `%s`;" % (name, model_name))
        for model_name in before_models:
            if model_name not in after_models:
                out.append("-- DropTable\nDROP TABLE `%s`;" % model_name)
        for model_name, model in after_models.items():
            if model_name in before_models:
                actions = self.alter(before, before_models[model_name], model)
                if actions:
                    out.append("-- AlterTable\nALTER TABLE `%s` %s;" % (model_name, ",\n    ".join(actions)))
        for model_name, model in after_models.items():
            if model_name not in before_models:
                out.append("-- CreateTable\n" + self.create_table(model))
        for model_name, model in after_models.items():
            if model_name in before_models:
                old_idx, new_idx = self.index_names(before, before_models[model_name]), self.index_names(after, model)
                for name in sorted(new_idx):
                    if name not in old_idx:
                        kind, fields = new_idx[name]
                        out.append("-- CreateIndex\nCREATE %s `%s` ON `%s`(%s);" % (
                            "UNIQUE INDEX" if kind == "UNIQUE INDEX" else "INDEX", name, model_name,
                            ", ".join("`%s`" % f for f in fields)))
        for name in sorted(new_fks):
            if name not in old_fks or name in changed_fks:
                model_name, relation = new_fks[name]
                out.append("-- AddForeignKey\nALTER TABLE `%s` ADD CONSTRAINT `%s` FOREIGN KEY (`%s`) REFERENCES `%s`(`id`) "
                           "ON DELETE %s ON UPDATE CASCADE;" % (model_name, name, relation.field, relation.target,
                                                                _mysql_action(relation.on_delete)))
        return "\n\n".join(out) + "\n"

    def alter(self, schema, old, new):
        actions = []
        old_fields = dict((f.name, f) for f in old.fields)
        new_fields = dict((f.name, f) for f in new.fields)
        for name in old_fields:
            if name not in new_fields:
                actions.append("DROP COLUMN `%s`" % name)
        for field in new.fields:
            if field.name not in old_fields:
                actions.append("ADD COLUMN " + self.column(self.after, field))
            else:
                before_sql = self.column(self.before, old_fields[field.name])
                after_sql = self.column(self.after, field)
                if before_sql != after_sql:
                    actions.append("MODIFY " + after_sql)
        return actions

    def create_table(self, model):
        lines = ["    " + self.column(self.after, f) + "," for f in model.fields]
        lines.append("")
        for name, (kind, fields) in sorted(self.index_names(self.after, model).items(), key=lambda item: item[1][0]):
            lines.append("    %s `%s`(%s)," % (kind, name, ", ".join("`%s`" % f for f in fields)))
        lines.append("    PRIMARY KEY (`id`)")
        return "CREATE TABLE `%s` (\n%s\n) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" % (
            model.name, "\n".join(lines))


def _mysql_action(action):
    return {"Restrict": "RESTRICT", "Cascade": "CASCADE", "SetNull": "SET NULL", "NoAction": "NO ACTION"}[action]


# --- the evolution ----------------------------------------------------------------------------------

class Step(object):
    """One migration of the history: a generated step (``before``/``after`` schemas) or hand-written SQL."""

    def __init__(self, slug, kind, before=None, after=None, sql=None, additive=None, undo=None, tags=()):
        self.slug = slug
        self.kind = kind
        self.before = before
        self.after = after
        self.sql = sql            # hand-written SQL for this engine
        self.additive = additive  # objects it only adds, for the re-apply test: SQL that removes them
        self.undo = undo
        self.tags = set(tags)
        self.name = None


NOUNS = ("Account", "Invoice", "Shipment", "Carrier", "Warehouse", "Product", "Supplier", "Order", "Customer", "Ticket",
         "Project", "Member", "Comment", "Payment", "Refund", "Coupon", "Region", "Device", "Session", "Report", "Audit",
         "Webhook", "Token", "Plan")
ADJECTIVES = ("primary", "legacy", "external", "internal", "billing", "shipping", "archived", "display", "source",
              "target", "review", "audit", "tracking", "notify", "retry", "sync", "export", "import", "public", "cached")


class Evolution(object):
    """A deterministic history: generated steps with hand-written migrations between them."""

    def __init__(self, engine):
        self.engine = engine
        self.provider = engine
        self.rng = random.Random(SEED)
        self.schema = Schema(engine)
        self.steps = []
        self.pinned = set()       # (model, field) used by views, triggers and checks: never dropped or altered
        self.frozen = set()       # models no generated step may change (a SQLite rebuild would break a view on them)
        self.counter = 0
        self.nouns = list(NOUNS)
        self.hand_objects = 0

    # names
    def fresh(self, prefix):
        self.counter += 1
        return "%s%d" % (prefix, self.counter)

    def q(self, name):
        return "`%s`" % name if self.engine == "mysql" else '"%s"' % name

    # generated steps
    def change(self, slug, mutate, tags=(), additive=None):
        before = copy.deepcopy(self.schema)
        undo = mutate(self.schema)
        self.steps.append(Step(slug, "prisma", before, copy.deepcopy(self.schema), tags=tags, undo=undo if additive else None,
                               additive=additive))

    def hand(self, slug, sql, tags=()):
        self.steps.append(Step(slug, "hand", sql=sql, tags=set(tags) | {"hand"}))

    def models(self, free_of_pins=False):
        return [m for m in self.schema.models if m.name not in self.frozen
                and (not free_of_pins or not any(p[0] == m.name for p in self.pinned))]

    def plain_fields(self, model, pinned_ok=False):
        return [f for f in model.fields if f.name != "id" and (pinned_ok or (model.name, f.name) not in self.pinned)
                and not any(r.field == f.name for r in model.relations) and not f.unique
                and not any(f.name in fields for fields, _n in model.indexes + model.uniques)]

    def build(self):
        for _first_models in range(4):
            self.op_add_model()
        self.op_add_enum()
        hand_ops = self.hand_schedule()
        for number in range(PRISMA_STEPS):
            self.random_change()
            if number in hand_ops:
                hand_ops[number]()
        self.name_steps()
        return self.steps

    def random_change(self):
        choices = [
            (14, self.op_add_field), (6, self.op_add_required_field), (7, self.op_add_model), (6, self.op_drop_field),
            (6, self.op_toggle_optional), (5, self.op_change_default), (5, self.op_change_type), (8, self.op_add_index),
            (4, self.op_drop_index), (5, self.op_add_unique), (6, self.op_add_relation), (3, self.op_change_on_delete),
            (2, self.op_drop_relation), (2, self.op_add_enum), (5, self.op_add_enum_value), (2, self.op_remove_enum_value),
            (2, self.op_drop_model), (2, self.op_long_index),
        ]
        while True:
            total = sum(w for w, _f in choices)
            pick = self.rng.uniform(0, total)
            for weight, function in choices:
                pick -= weight
                if pick <= 0:
                    break
            if function() is not False:
                return

    # --- generated changes ----------------------------------------------------------------------

    def op_add_model(self):
        name = self.nouns.pop(0) if self.nouns else self.fresh("Entity")
        model = Model(name)
        model.fields.append(Field("title", "String", native="VarChar(120)" if self.rng.random() < 0.5 else None))
        model.fields.append(Field("createdAt", "DateTime", default="now"))
        if self.rng.random() < 0.5:
            model.fields.append(Field("amount", "Decimal", optional=True))
        self.change("create_%s" % name.lower(), lambda s: s.models.append(model), additive="table",
                    tags={"create_table"})
        self.steps[-1].undo = [("table", name)]

    def op_add_field(self):
        models = self.models()
        if not models:
            return False
        model = self.rng.choice(models)
        kind = self.rng.choice(("String", "Int", "Boolean", "DateTime", "Float", "Json", "BigInt"))
        field = Field(self.fresh(self.rng.choice(ADJECTIVES)), kind, optional=True)
        self.change("add_%s_to_%s" % (field.name, model.name.lower()),
                    lambda s: s.model(model.name).fields.append(field), additive="column", tags={"add_column"})
        self.steps[-1].undo = [("column", model.name, field.name)]

    def op_add_required_field(self):
        models = self.models()
        model = self.rng.choice(models)
        kind, default = self.rng.choice((("Int", 0), ("Boolean", False), ("String", "pending"), ("Float", 1.5),
                                         ("DateTime", "now")))
        field = Field(self.fresh(self.rng.choice(ADJECTIVES)), kind, default=default)
        self.change("add_required_%s" % field.name, lambda s: s.model(model.name).fields.append(field), additive="column",
                    tags={"add_column", "default"})
        self.steps[-1].undo = [("column", model.name, field.name)]

    def op_drop_field(self):
        candidates = [(m, f) for m in self.models() for f in self.plain_fields(m) if f.name not in ("title", "createdAt")]
        if not candidates:
            return False
        model, field = self.rng.choice(candidates)
        self.change("drop_%s" % field.name, lambda s: s.model(model.name).fields.remove(s.model(model.name).field(field.name)),
                    tags={"drop_column"})

    def op_toggle_optional(self):
        candidates = [(m, f) for m in self.models() for f in self.plain_fields(m) if f.kind in SCALARS]
        if not candidates:
            return False
        model, field = self.rng.choice(candidates)

        def mutate(s):
            target = s.model(model.name).field(field.name)
            target.optional = not target.optional
            if not target.optional and target.default is None:
                target.default = {"String": "n/a", "Int": 0, "BigInt": 0, "Float": 0, "Boolean": False, "DateTime": "now",
                                  "Decimal": 0, "Json": None}.get(target.kind)
                if target.default is None:
                    target.optional = True
        self.change("toggle_null_%s" % field.name, mutate, tags={"nullability"})

    def op_change_default(self):
        candidates = [(m, f) for m in self.models() for f in self.plain_fields(m) if f.kind in ("Int", "String", "Boolean")]
        if not candidates:
            return False
        model, field = self.rng.choice(candidates)

        def mutate(s):
            target = s.model(model.name).field(field.name)
            if target.default is not None and target.optional:
                target.default = None
            else:
                target.default = {"Int": self.rng.randint(1, 99), "String": self.rng.choice(ADJECTIVES),
                                  "Boolean": self.rng.random() < 0.5}[target.kind]
        self.change("default_%s" % field.name, mutate, tags={"default"})

    def op_change_type(self):
        # SQLite keeps no lengths: a VarChar change would be an empty migration there
        candidates = [(m, f) for m in self.models() for f in self.plain_fields(m)
                      if (f.kind == "Int") or (f.kind == "String" and f.name != "title" and self.engine != "sqlite")]
        if not candidates:
            return False
        model, field = self.rng.choice(candidates)

        def mutate(s):
            target = s.model(model.name).field(field.name)
            if target.kind == "Int":
                target.kind = "BigInt"
                if target.default is not None and not isinstance(target.default, int):
                    target.default = None
            else:
                target.native = "VarChar(%d)" % self.rng.choice((64, 255, 500))
        self.change("retype_%s" % field.name, mutate, tags={"type"})

    def op_add_index(self):
        candidates = [(m, f) for m in self.models() for f in m.fields if f.name != "id" and f.kind in SCALARS
                      and f.kind not in ("Json",) and not any((f.name,) == tuple(x) for x, _n in m.indexes)
                      and not any(r.field == f.name for r in m.relations)]
        if not candidates:
            return False
        model, field = self.rng.choice(candidates)
        fields = (field.name,)
        others = [f.name for f in model.fields if f.name not in ("id", field.name) and f.kind in ("DateTime", "Int", "Boolean")
                  and not any(r.field == f.name for r in model.relations)]
        if others and self.rng.random() < 0.4:
            fields = (field.name, self.rng.choice(others))
        if any(tuple(x) == fields for x, _n in model.indexes):
            return False
        self.change("index_%s" % "_".join(fields), lambda s: s.model(model.name).indexes.append((fields, None)),
                    additive="index", tags={"create_index"})
        self.steps[-1].undo = [("index", model.name, prisma_name(model.name, fields, "idx", MAX_NAME[self.engine]))]

    def op_long_index(self):
        models = self.models()
        model = self.rng.choice(models)
        fields = ("createdAt",)
        if any(tuple(x) == fields for x, _n in model.indexes):
            return False
        limit = MAX_NAME[self.engine] if self.engine != "sqlite" else 70
        name = ("%s_created_at_lookup_index_for_reporting_dashboards_" % model.name.lower())
        name = (name + "x" * limit)[:limit]
        self.change("long_index_%s" % model.name.lower(), lambda s: s.model(model.name).indexes.append((fields, name)),
                    additive="index", tags={"create_index", "long_name"})
        self.steps[-1].undo = [("index", model.name, name)]

    def op_drop_index(self):
        candidates = [(m, i) for m in self.models() for i in m.indexes if not any(p[0] == m.name and p[1] in i[0]
                                                                                  for p in self.pinned)]
        if not candidates:
            return False
        model, index = self.rng.choice(candidates)
        self.change("drop_index_%s" % "_".join(index[0]), lambda s: s.model(model.name).indexes.remove(index),
                    tags={"drop_index"})

    def op_add_unique(self):
        candidates = [(m, f) for m in self.models() for f in self.plain_fields(m) if f.kind in ("String", "Int", "BigInt")]
        if not candidates:
            return False
        model, field = self.rng.choice(candidates)
        if self.rng.random() < 0.5:
            self.change("unique_%s" % field.name, lambda s: setattr(s.model(model.name).field(field.name), "unique", True),
                        additive="index", tags={"unique"})
            self.steps[-1].undo = [("index", model.name, prisma_name(model.name, (field.name,), "key", MAX_NAME[self.engine]))]
        else:
            fields = (field.name, "createdAt")
            self.change("unique_%s_created" % field.name, lambda s: s.model(model.name).uniques.append((fields, None)),
                        additive="index", tags={"unique"})
            self.steps[-1].undo = [("index", model.name, prisma_name(model.name, fields, "key", MAX_NAME[self.engine]))]

    def op_add_relation(self):
        models = self.models()
        if len(models) < 2:
            return False
        source, target = self.rng.sample(models, 2)
        name = self.fresh("rel")
        field = Field("%sId" % name, "Int", optional=self.rng.random() < 0.6)
        relation = Relation(name, field.name, target.name, on_delete="SetNull" if field.optional else "Restrict")

        def mutate(s):
            model = s.model(source.name)
            model.fields.append(field)
            model.relations.append(relation)
        self.change("relate_%s_%s" % (source.name.lower(), target.name.lower()), mutate, tags={"foreign_key"})

    def op_change_on_delete(self):
        candidates = [(m, r) for m in self.models() for r in m.relations]
        if not candidates:
            return False
        model, relation = self.rng.choice(candidates)
        choices = [a for a in ("Cascade", "Restrict", "NoAction") + (("SetNull",) if model.field(relation.field).optional else ())
                   if a != relation.on_delete]

        def mutate(s):
            next(r for r in s.model(model.name).relations if r.name == relation.name).on_delete = self.rng.choice(choices)
        self.change("on_delete_%s" % relation.name, mutate, tags={"foreign_key"})

    def op_drop_relation(self):
        candidates = [(m, r) for m in self.models() for r in m.relations if (m.name, r.field) not in self.pinned]
        if not candidates:
            return False
        model, relation = self.rng.choice(candidates)

        def mutate(s):
            target = s.model(model.name)
            target.relations = [r for r in target.relations if r.name != relation.name]
            target.fields = [f for f in target.fields if f.name != relation.field]
        self.change("unrelate_%s" % relation.name, mutate, tags={"foreign_key", "drop_column"})

    def op_add_enum(self):
        name = "Status%d" % (len(self.schema.enums) + 1)
        values = ["DRAFT", "ACTIVE", "CLOSED"]
        models = self.models()
        model = self.rng.choice(models)
        field = Field(self.fresh("status"), name, default="DRAFT")

        def mutate(s):
            s.enums[name] = list(values)
            s.model(model.name).fields.append(field)
        self.change("enum_%s" % name.lower(), mutate, tags={"enum"})

    def op_add_enum_value(self):
        if not self.schema.enums or self.engine == "sqlite":
            return False  # SQLite keeps enums as TEXT: a new value changes nothing there
        name = self.rng.choice(sorted(self.schema.enums))
        value = self.fresh("STATE").upper()
        self.change("enum_value_%s" % value.lower(), lambda s: s.enums[name].append(value), tags={"enum_value"})

    def op_remove_enum_value(self):
        candidates = [n for n, v in self.schema.enums.items() if len(v) > 3]
        if not candidates or self.engine == "sqlite":
            return False
        name = self.rng.choice(sorted(candidates))
        value = self.schema.enums[name][-1]
        self.change("enum_drop_%s" % value.lower(), lambda s: s.enums[name].remove(value), tags={"enum_value"})

    def op_drop_model(self):
        candidates = [m for m in self.models(free_of_pins=True) if not any(r.target == m.name for o in self.schema.models
                                                                           for r in o.relations)]
        if len(self.schema.models) < 6 or not candidates:
            return False
        model = self.rng.choice(candidates)
        self.change("drop_%s" % model.name.lower(), lambda s: s.models.remove(s.model(model.name)), tags={"drop_table"})

    # --- hand-written migrations -------------------------------------------------------------------

    def hand_schedule(self):
        ops = [self.hand_rename_column, self.hand_view, self.hand_data_backfill, self.hand_long_index_names,
               self.hand_copy_folder, self.hand_check_constraint, self.hand_temp_table, self.hand_trigger,
               self.hand_replace_view, self.hand_partial_index, self.hand_rename_column, self.hand_add_and_backfill,
               self.hand_replace_trigger, self.hand_expression_index, self.hand_rename_index, self.hand_drop_if_exists,
               self.hand_copy_folder, self.hand_transaction_block, self.hand_rename_table, self.hand_seed_rows]
        if self.engine == "postgresql":
            ops += [self.hand_sequence, self.hand_extension, self.hand_concurrently, self.hand_comment, self.hand_do_block,
                    self.hand_enum_if_not_exists, self.hand_rls, self.hand_lock_timeout, self.hand_replace_view,
                    self.hand_concurrently]
        else:
            ops += [self.hand_rename_column, self.hand_replace_view, self.hand_partial_index, self.hand_long_index_names,
                    self.hand_check_constraint, self.hand_drop_if_exists, self.hand_copy_folder, self.hand_expression_index,
                    self.hand_transaction_block, self.hand_rename_index]
        positions = sorted(self.rng.sample(range(6, PRISMA_STEPS), len(ops)))
        return dict(zip(positions, ops))

    def pick_field(self, kinds=("String", "Int", "DateTime", "Boolean", "BigInt", "Float")):
        candidates = [(m, f) for m in self.models() for f in self.plain_fields(m) if f.kind in kinds]
        return self.rng.choice(candidates) if candidates else (None, None)

    def hand_rename_column(self):
        model, field = self.pick_field()
        if model is None:
            return
        new = field.name + "Renamed"
        self.hand("rename_%s" % field.name, "-- Rename by hand instead of drop and add, to keep the data\n"
                  "ALTER TABLE %s RENAME COLUMN %s TO %s;\n" % (self.q(model.name), self.q(field.name), self.q(new)),
                  tags={"rename"})
        field.name = new

    def hand_rename_table(self):
        candidates = [m for m in self.models(free_of_pins=True)
                      if not any(r.target == m.name for o in self.schema.models for r in o.relations) and not m.relations
                      and not m.indexes and not m.uniques and not any(f.unique for f in m.fields)]
        if not candidates:
            return
        model = self.rng.choice(candidates)
        new = model.name + "Archive"
        sql = "ALTER TABLE %s RENAME TO %s;\n" % (self.q(model.name), self.q(new))
        if self.engine == "postgresql":
            sql += 'ALTER TABLE %s RENAME CONSTRAINT "%s_pkey" TO "%s_pkey";\n' % (self.q(new), model.name, new)
            sql += 'ALTER SEQUENCE "%s_id_seq" RENAME TO "%s_id_seq";\n' % (model.name, new)
        self.hand("rename_table_%s" % model.name.lower(), sql, tags={"rename"})
        model.name = new

    def hand_view(self):
        model, field = self.pick_field()
        if model is None:
            return
        self.view = ("%s_overview" % model.name.lower(), model.name, field.name)
        self.pinned |= {(model.name, field.name), (model.name, "title"), (model.name, "createdAt")}
        if self.engine == "sqlite":
            # SQLite checks views when a rebuilt table is renamed into place: keep the table as it is
            self.frozen.add(model.name)
        view, table, column = self.view
        sql = "CREATE VIEW %s AS SELECT %s, %s FROM %s;\n" % (self.q(view), self.q("id"), self.q(column), self.q(table))
        self.hand("view_%s" % view, sql, tags={"view"})

    def hand_replace_view(self):
        if not getattr(self, "view", None):
            return
        view, table, column = self.view
        self.view_version = getattr(self, "view_version", 0) + 1
        extra = [c for c in ("title", "createdAt") if c != column][self.view_version % 2 if column not in ("title", "createdAt")
                                                                   else 0]
        self.pinned.add((table, extra))
        select = "SELECT %s, %s, %s FROM %s WHERE %s > %d" % (self.q("id"), self.q(column), self.q(extra), self.q(table),
                                                              self.q("id"), self.view_version)
        if self.engine == "sqlite":
            sql = "DROP VIEW IF EXISTS %s;\nCREATE VIEW %s AS %s;\n" % (self.q(view), self.q(view), select)
        elif self.engine == "postgresql":
            # PostgreSQL can only add columns at the end with OR REPLACE, so a new shape is dropped first
            if self.view_version > 1:
                sql = "DROP VIEW %s;\nCREATE VIEW %s AS %s;\n" % (self.q(view), self.q(view), select)
            else:
                sql = "CREATE OR REPLACE VIEW %s AS %s;\n" % (self.q(view), select)
        else:
            sql = "CREATE OR REPLACE VIEW %s AS %s;\n" % (self.q(view), select)
        self.hand("replace_view_%d" % self.view_version, sql, tags={"view", "or_replace"})

    def hand_trigger(self):
        model = self.rng.choice(self.models())
        column = self.fresh("touchedAt")
        self.pinned.add((model.name, column))
        self.trigger = (model.name, column)
        add = "ALTER TABLE %s ADD COLUMN %s %s;\n" % (self.q(model.name), self.q(column),
                                                      {"postgresql": "TIMESTAMP(3)", "mysql": "DATETIME(3) NULL",
                                                       "sqlite": "DATETIME"}[self.engine])
        if self.engine == "postgresql":
            sql = add + ('CREATE OR REPLACE FUNCTION "touch_%s"() RETURNS TRIGGER AS $$\nBEGIN\n    NEW."%s" = now();\n'
                         '    RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n\n'
                         'CREATE TRIGGER "%s_touch" BEFORE UPDATE ON "%s"\nFOR EACH ROW EXECUTE FUNCTION "touch_%s"();\n'
                         % (model.name.lower(), column, model.name.lower(), model.name, model.name.lower()))
        elif self.engine == "mysql":
            sql = add + ("CREATE TRIGGER `%s_touch` BEFORE UPDATE ON `%s` FOR EACH ROW SET NEW.`%s` = CURRENT_TIMESTAMP(3);\n"
                         % (model.name.lower(), model.name, column))
        else:
            sql = add + ('CREATE TRIGGER "%s_touch" AFTER UPDATE ON "%s"\nBEGIN\n    UPDATE "%s" SET "%s" = CURRENT_TIMESTAMP '
                         'WHERE "id" = NEW."id";\nEND;\n' % (model.name.lower(), model.name, model.name, column))
        self.hand("trigger_%s" % model.name.lower(), sql, tags={"trigger", "function"})
        model.fields.append(Field(column, "DateTime", optional=True))

    def hand_replace_trigger(self):
        if not getattr(self, "trigger", None):
            return
        table, column = self.trigger
        if self.engine == "postgresql":
            sql = ('CREATE OR REPLACE FUNCTION "touch_%s"() RETURNS TRIGGER AS $$\nBEGIN\n    NEW."%s" = clock_timestamp();\n'
                   '    RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n' % (table.lower(), column))
        elif self.engine == "mysql":
            sql = ("DROP TRIGGER IF EXISTS `%s_touch`;\nCREATE TRIGGER `%s_touch` BEFORE UPDATE ON `%s` FOR EACH ROW "
                   "SET NEW.`%s` = UTC_TIMESTAMP(3);\n" % (table.lower(), table.lower(), table, column))
        else:
            sql = ('DROP TRIGGER IF EXISTS "%s_touch";\nCREATE TRIGGER "%s_touch" AFTER UPDATE OF "title" ON "%s"\nBEGIN\n'
                   '    UPDATE "%s" SET "%s" = CURRENT_TIMESTAMP WHERE "id" = NEW."id";\nEND;\n'
                   % (table.lower(), table.lower(), table, table, column))
            self.pinned.add((table, "title"))
        self.hand("replace_trigger_%s" % table.lower(), sql, tags={"trigger", "or_replace"})

    def hand_data_backfill(self):
        model, field = self.pick_field(("String",))
        if model is None:
            return
        self.hand("backfill_%s" % field.name, "UPDATE %s SET %s = 'unknown' WHERE %s IS NULL;\n"
                  % (self.q(model.name), self.q(field.name), self.q(field.name)), tags={"data"})

    def hand_add_and_backfill(self):
        model = self.rng.choice(self.models())
        column = self.fresh("code")
        kind = {"postgresql": "TEXT", "mysql": "VARCHAR(191) NULL", "sqlite": "TEXT"}[self.engine]
        sql = ("ALTER TABLE %s ADD COLUMN %s %s;\nUPDATE %s SET %s = 'C-' || %s;\n" if self.engine != "mysql" else
               "ALTER TABLE %s ADD COLUMN %s %s;\nUPDATE %s SET %s = CONCAT('C-', %s);\n") % (
            self.q(model.name), self.q(column), kind, self.q(model.name), self.q(column), self.q("id"))
        self.hand("add_and_backfill_%s" % column, sql, tags={"data", "add_column"})
        model.fields.append(Field(column, "String", optional=True))

    def hand_seed_rows(self):
        table = "app_settings"
        key_type = "VARCHAR(64)" if self.engine == "mysql" else "TEXT"
        self.hand("seed_%s" % table, "CREATE TABLE %s (%s %s NOT NULL PRIMARY KEY, %s %s);\n"
                  "INSERT INTO %s (%s, %s) VALUES ('currency', 'EUR'), ('timezone', 'UTC');\n"
                  % (self.q(table), self.q("key"), key_type, self.q("value"), key_type, self.q(table), self.q("key"),
                     self.q("value")), tags={"data", "create_table"})

    def hand_temp_table(self):
        model = self.rng.choice(self.models())
        column = self.fresh("legacyRef")
        tmp = "tmp_%s" % model.name.lower()
        if self.engine == "postgresql":
            sql = ('CREATE TEMP TABLE "%s" ON COMMIT DROP AS SELECT "id" FROM "%s";\n'
                   'ALTER TABLE "%s" ADD COLUMN "%s" INTEGER;\n' % (tmp, model.name, model.name, column))
        elif self.engine == "mysql":
            sql = ("CREATE TEMPORARY TABLE `%s` (`id` INTEGER NOT NULL);\nINSERT INTO `%s` SELECT `id` FROM `%s`;\n"
                   "ALTER TABLE `%s` ADD COLUMN `%s` INTEGER NULL;\nDROP TEMPORARY TABLE `%s`;\n"
                   % (tmp, tmp, model.name, model.name, column, tmp))
        else:
            sql = ('CREATE TEMP TABLE "%s" ("id" INTEGER);\nINSERT INTO "%s" SELECT "id" FROM "%s";\n'
                   'ALTER TABLE "%s" ADD COLUMN "%s" INTEGER;\nDROP TABLE "%s";\n'
                   % (tmp, tmp, model.name, model.name, column, tmp))
        self.hand("temp_table_%s" % column, sql, tags={"temp_table", "add_column"})
        model.fields.append(Field(column, "Int", optional=True))

    def hand_long_index_names(self):
        model, field = self.pick_field()
        if model is None:
            return
        self.pinned.add((model.name, field.name))
        base = "%s_%s_hand_written_index_with_a_name_longer_than_the_engine_allows_" % (model.name.lower(), field.name.lower())
        if self.engine == "postgresql":
            first, second = (base * 2)[:64], (base * 2)[:73]
            sql = ('CREATE INDEX "%s" ON "%s"("%s");\nCREATE INDEX IF NOT EXISTS "%s" ON "%s"("%s", "id");\n'
                   % (first, model.name, field.name, second, model.name, field.name))
        elif self.engine == "mysql":
            sql = "CREATE INDEX `%s` ON `%s`(`%s`);\n" % ((base * 2)[:64], model.name, field.name)
        else:
            sql = 'CREATE INDEX IF NOT EXISTS "%s" ON "%s"("%s");\n' % ((base * 2)[:90], model.name, field.name)
        self.hand("long_index_names_%s" % field.name.lower(), sql, tags={"long_name", "create_index"})

    def hand_copy_folder(self):
        model = self.rng.choice(self.models())
        field = Field(self.fresh("copied"), "String", optional=True)
        self.change("new_models copy", lambda s: s.model(model.name).fields.append(field), tags={"copy_folder", "add_column"})
        self.steps[-1].undo = None

    def hand_check_constraint(self):
        model = self.rng.choice(self.models())
        column = self.fresh("quantity")
        model.fields.append(Field(column, "Int", optional=True))
        self.pinned.add((model.name, column))
        if self.engine == "sqlite":
            sql = 'ALTER TABLE "%s" ADD COLUMN "%s" INTEGER CHECK ("%s" >= 0);\n' % (model.name, column, column)
        else:
            sql = ("ALTER TABLE %s ADD COLUMN %s INTEGER%s;\nALTER TABLE %s ADD CONSTRAINT %s CHECK (%s >= 0);\n" % (
                self.q(model.name), self.q(column), " NULL" if self.engine == "mysql" else "", self.q(model.name),
                self.q("%s_%s_check" % (model.name, column)), self.q(column)))
        self.hand("check_%s" % column, sql, tags={"check", "add_column"})

    def hand_partial_index(self):
        model, field = self.pick_field(("String", "Int", "DateTime", "BigInt"))
        if model is None:
            return
        self.pinned.add((model.name, field.name))
        name = "%s_%s_active_idx" % (model.name, field.name)
        if self.engine == "mysql":
            sql = "CREATE INDEX `%s` ON `%s`(`%s` DESC, `id`);\n" % (name, model.name, field.name)
        else:
            sql = 'CREATE INDEX "%s" ON "%s"("%s") WHERE "%s" IS NOT NULL;\n' % (name, model.name, field.name, field.name)
        self.hand("partial_index_%s" % field.name, sql, tags={"partial_index", "create_index"})

    def hand_expression_index(self):
        model, field = self.pick_field(("String",))
        if model is None:
            return
        self.pinned.add((model.name, field.name))
        name = "%s_%s_lower_idx" % (model.name, field.name)
        if self.engine == "mysql":
            sql = "CREATE INDEX `%s` ON `%s`(`%s`(20));\n" % (name, model.name, field.name)
        else:
            sql = 'CREATE INDEX "%s" ON "%s"(lower("%s"));\n' % (name, model.name, field.name)
        self.hand("expression_index_%s" % field.name, sql, tags={"expression_index", "create_index"})

    def hand_rename_index(self):
        candidates = [(m, i) for m in self.models() for i in m.indexes if i[1] is None]
        if not candidates:
            return
        model, index = self.rng.choice(candidates)
        old = prisma_name(model.name, index[0], "idx", MAX_NAME[self.engine])
        new = old.replace("_idx", "_lookup_idx")
        if self.engine == "mysql":
            sql = "ALTER TABLE `%s` RENAME INDEX `%s` TO `%s`;\n" % (model.name, old, new)
        elif self.engine == "postgresql":
            sql = 'ALTER INDEX "%s" RENAME TO "%s";\n' % (old, new)
        else:
            return
        self.hand("rename_index_%s" % old.lower(), sql, tags={"rename"})
        model.indexes[model.indexes.index(index)] = (index[0], new)

    def hand_drop_if_exists(self):
        model = self.rng.choice(self.models())
        name = "%s_never_created_idx" % model.name
        column = self.fresh("maybe")
        if self.engine == "mysql":
            sql = "DROP INDEX IF EXISTS `%s` ON `%s`;\nALTER TABLE `%s` ADD COLUMN IF NOT EXISTS `%s` INTEGER NULL;\n" % (
                name, model.name, model.name, column)
        else:
            sql = 'DROP INDEX IF EXISTS "%s";\nALTER TABLE "%s" ADD COLUMN %s"%s" INTEGER;\n' % (
                name, model.name, "IF NOT EXISTS " if self.engine == "postgresql" else "", column)
        model.fields.append(Field(column, "Int", optional=True))
        self.hand("drop_if_exists_%s" % column, sql, tags={"if_exists", "add_column"})

    def hand_transaction_block(self):
        model = self.rng.choice(self.models())
        column = self.fresh("note")
        kind = {"postgresql": "TEXT", "mysql": "VARCHAR(191) NULL", "sqlite": "TEXT"}[self.engine]
        if self.engine == "mysql":
            sql = "ALTER TABLE `%s` ADD COLUMN `%s` %s;\n" % (model.name, column, kind)
        else:
            sql = 'BEGIN;\nALTER TABLE "%s" ADD COLUMN "%s" %s;\nCOMMIT;\n' % (model.name, column, kind)
        self.hand("transaction_%s" % column, sql, tags={"transaction", "add_column"})
        model.fields.append(Field(column, "String", optional=True))

    # PostgreSQL-only kinds
    def hand_sequence(self):
        model = self.rng.choice(self.models())
        column = self.fresh("number")
        sequence = "%s_%s_seq" % (model.name.lower(), column)
        sql = ('CREATE SEQUENCE "%s";\nALTER TABLE "%s" ADD COLUMN "%s" INTEGER NOT NULL DEFAULT nextval(\'"%s"\');\n'
               'ALTER SEQUENCE "%s" OWNED BY "%s"."%s";\n' % (sequence, model.name, column, sequence, sequence, model.name,
                                                              column))
        self.pinned.add((model.name, column))
        self.hand("sequence_%s" % column, sql, tags={"sequence", "add_column"})

    def hand_extension(self):
        model = self.rng.choice(self.models())
        column = self.fresh("email")
        sql = 'CREATE EXTENSION IF NOT EXISTS "citext";\nALTER TABLE "%s" ADD COLUMN "%s" CITEXT;\n' % (model.name, column)
        self.pinned.add((model.name, column))
        self.hand("extension_citext", sql, tags={"extension", "add_column"})

    def hand_concurrently(self):
        model, field = self.pick_field()
        if model is None:
            return
        self.pinned.add((model.name, field.name))
        name = "%s_%s_concurrent_idx" % (model.name, field.name)
        self.hand("concurrent_index_%s" % field.name, '-- CreateIndex\nCREATE INDEX CONCURRENTLY "%s" ON "%s"("%s");\n'
                  % (name, model.name, field.name), tags={"concurrently", "create_index"})

    def hand_comment(self):
        model, field = self.pick_field()
        if model is None:
            return
        self.pinned.add((model.name, field.name))
        self.hand("comment_%s" % field.name, "COMMENT ON COLUMN \"%s\".\"%s\" IS 'Set by the %s importer';\n"
                  % (model.name, field.name, model.name.lower()), tags={"comment"})

    def hand_do_block(self):
        model = self.rng.choice(self.models())
        self.hand("do_block_%s" % model.name.lower(),
                  "DO $$\nBEGIN\n    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reporting') THEN\n"
                  "        RAISE NOTICE 'no reporting role';\n    END IF;\nEND\n$$;\n", tags={"do_block"})

    def hand_enum_if_not_exists(self):
        if not self.schema.enums:
            return
        name = sorted(self.schema.enums)[0]
        value = "ARCHIVED"
        if value in self.schema.enums[name]:
            return
        self.hand("enum_if_not_exists", "ALTER TYPE \"%s\" ADD VALUE IF NOT EXISTS '%s';\n" % (name, value),
                  tags={"enum_value", "if_exists"})
        self.schema.enums[name].append(value)

    def hand_rls(self):
        model = self.rng.choice(self.models())
        self.hand("rls_%s" % model.name.lower(), 'ALTER TABLE "%s" ENABLE ROW LEVEL SECURITY;\n'
                  'CREATE POLICY "%s_read" ON "%s" FOR SELECT USING (true);\n' % (model.name, model.name.lower(), model.name),
                  tags={"rls"})

    def hand_lock_timeout(self):
        model = self.rng.choice(self.models())
        column = self.fresh("flag")
        self.hand("lock_timeout_%s" % column, "SET lock_timeout = '5s';\nALTER TABLE \"%s\" ADD COLUMN \"%s\" BOOLEAN NOT NULL "
                  "DEFAULT false;\n" % (model.name, column), tags={"set", "add_column"})
        model.fields.append(Field(column, "Boolean", default=False))

    # --- names ---------------------------------------------------------------------------------------

    def name_steps(self):
        stamp = datetime.datetime(2024, 1, 8, 9, 30, 0)
        for step in self.steps:
            stamp += datetime.timedelta(hours=self.rng.randint(5, 200), minutes=self.rng.randint(0, 59),
                                        seconds=self.rng.randint(0, 59))
            step.name = "%s_%s" % (stamp.strftime("%Y%m%d%H%M%S"), step.slug)


# --- building --------------------------------------------------------------------------------------

class Corpus(object):
    """A built history: ``migrations`` as (name, sql, step) in order, written out by :meth:`write`."""

    def __init__(self, engine, migrations):
        self.engine = engine
        self.migrations = migrations

    @property
    def names(self):
        return [name for name, _sql, _step in self.migrations]

    def write(self, folder):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "migration_lock.toml"), "w") as handle:
            handle.write('# Please do not edit this file manually\nprovider = "%s"\n' % self.engine)
        for name, sql, _step in self.migrations:
            os.makedirs(os.path.join(folder, name))
            with open(os.path.join(folder, name, "migration.sql"), "w") as handle:
                handle.write(sql)
        return folder

    def tags(self, name):
        return next(step.tags for n, _sql, step in self.migrations if n == name)

    def step(self, name):
        return next(step for n, _sql, step in self.migrations if n == name)


def _cli_env(work):
    env = dict(os.environ, CHECKPOINT_DISABLE="1", PRISMA_HIDE_UPDATE_MESSAGE="1",
               PRISMA_ENGINES_MIRROR="http://127.0.0.1:9/no-engine-downloads", DATABASE_URL="file:%s/unused.db" % work,
               XDG_CACHE_HOME=os.path.join(work, "cache"), XDG_CONFIG_HOME=os.path.join(work, "config"))
    return env


def _diff(work, before, after):
    proc = subprocess.run([PRISMA_BIN, "migrate", "diff", "--from-schema-datamodel", before, "--to-schema-datamodel", after,
                           "--script"], cwd=work, env=_cli_env(work), capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise RuntimeError("prisma migrate diff %s -> %s failed:\n%s\n%s" % (before, after, proc.stdout, proc.stderr))
    return proc.stdout


def _cache_key(engine):
    digest = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as handle:
        digest.update(handle.read())
    with open(os.path.join(CLI_DIR, "package-lock.json"), "rb") as handle:
        digest.update(handle.read())
    digest.update(engine.encode())
    return digest.hexdigest()[:16]


def build_corpus(engine, workers=2):
    """The history for ``engine`` (``postgresql``, ``mysql``, ``sqlite``), built once and cached."""
    steps = Evolution(engine).build()
    cache = os.path.join(CACHE_DIR, "%s-%s.json" % (engine, _cache_key(engine)))
    scripts = None
    if os.path.exists(cache):
        with open(cache) as handle:
            scripts = json.load(handle)
    if scripts is None:
        scripts = _render_scripts(engine, steps, workers)
        os.makedirs(CACHE_DIR, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=CACHE_DIR)
        with os.fdopen(fd, "w") as handle:
            json.dump(scripts, handle)
        os.rename(tmp, cache)
    return Corpus(engine, [(step.name, scripts[step.name], step) for step in steps])


def _render_scripts(engine, steps, workers):
    scripts = {}
    work = tempfile.mkdtemp(prefix="sr-corpus-%s-" % engine)
    try:
        os.symlink(os.path.join(CLI_DIR, "node_modules"), os.path.join(work, "node_modules"))
        shutil.copy(os.path.join(CLI_DIR, "prisma.config.ts"), work)
        os.makedirs(os.path.join(work, "prisma"))
        shutil.copy(os.path.join(CLI_DIR, "schema.prisma"), os.path.join(work, "prisma", "schema.prisma"))
        jobs = {}
        for number, step in enumerate(steps):
            if step.kind == "hand":
                scripts[step.name] = step.sql
            elif engine == "mysql":
                scripts[step.name] = MySQLWriter(step.before, step.after).script()
            else:
                before = os.path.join(work, "s%03d_a.prisma" % number)
                after = os.path.join(work, "s%03d_b.prisma" % number)
                for path, schema in ((before, step.before), (after, step.after)):
                    with open(path, "w") as handle:
                        handle.write(schema.render())
                jobs[step.name] = (before, after)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = dict((pool.submit(_diff, work, before, after), name) for name, (before, after) in jobs.items())
            for future in concurrent.futures.as_completed(futures):
                scripts[futures[future]] = future.result()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return scripts
