"""Contract §2's value rules as ClickHouse SQL expressions over the properties' JSON text.

The embedded engine is the reference (metering.engine.batch / columns / values); every rule
here reproduces it:

* Paths: a literal key equal to the whole dot path wins, even when it holds JSON null; else the
  path walks nested objects (never into arrays).
* Text form (filters, unique_count, group_by): strings as they are, booleans `true`/`false`,
  numbers by their literal text (`1.50` stays `1.50`, `-0` reads `0`), objects and arrays as
  canonical JSON (sorted keys, no spaces, UTF-8 kept, number literals as written), JSON null
  and missing as NULL.
* Numbers (sum, max, min, latest): the text form, trimmed of white space (Unicode's, as Arrow
  trims it), when it reads as a decimal number (sign, digits, point, exponent); values with
  more than 18 decimal places or 40 integer digits are skipped as out of range, never rounded.
  Values are Decimal256(18): exact, never Float64.

ClickHouse's JSON functions read numbers as Float64 and write them back in their shortest
form (1.50 → 1.5, and long decimals lose digits), so a number's literal text cannot come from
them. Strings, integers (Int64/UInt64 keep every digit), booleans and null are read directly;
only when the value at a path is a non-integer number, an object or an array, the document is
re-read with every number turned into a marked string first (:func:`marked`), which keeps its
literal text exactly. `if` evaluates that branch only for the rows that need it.

An object's or array's text form keeps the document's key order: the workbench's own events
are stored as canonical JSON (sorted keys), so it is canonical there; over an OpenMeter
table, whose `data` is stored as sent, it is not (filters and labels rarely name objects).
"""

from __future__ import annotations

from collections.abc import Sequence

# Arrow's utf8_trim_whitespace set (the embedded engine trims numbers with it).
_WS = (r"[\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
       r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]")
_TRIM = f"^{_WS}+|{_WS}+$"
_LOOSE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_JSON_NUMBER = r"-?[0-9][-+.eE0-9]*"
_STRING_GROUP = r'"((?:[^"\\]|\\.)*)"'
_STRING_MARK = r'"s\1"'
_NUMBER_GROUP = f'((?:{_JSON_STRING}|[^"0-9-])*)({_JSON_NUMBER})?'
_NUMBER_MARK = r'\1"n\2"'
_END_MARKS = r'(?:"n")+$'
_FAST = r"^[+-]?[0-9]{1,40}(\.[0-9]{0,18})?$"
_RAW_TOKENS = _JSON_STRING + '|[^"]+'
_ESCAPES = r'\\u[0-9a-fA-F]{4}|\\.|[^\\]+'
SCALE = 18
MAX_INT_DIGITS = 40

# Status codes, as metering.engine.columns: OK, MISSING, NOT_NUMBER, OUT_OF_RANGE.
OK, MISSING, NOT_NUMBER, OUT_OF_RANGE = 0, 1, 2, 3


def lit(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def lit_array(items: Sequence[str]) -> str:
    return "[" + ",".join(lit(s) for s in items) + "]"


def marked(props: str) -> str:
    """The JSON text with every string prefixed `s` and every number turned into the string
    `n<literal>`: JSON functions then hand back numbers' literal text, and a string never
    reads as a number. Keys are strings too, so paths over it prefix each key with `s`.

    Two regular-expression passes (RE2, linear): strings first (each match starts at an
    opening quote, so the scan stays in step); then numbers, each match taking a run of
    whole strings and other characters and the number after it (the number is optional so
    that a match always starts where the last one ended, never inside a string; the empty
    one at the end adds a `"n"` that is cut off)."""
    strings = f"replaceRegexpAll({props}, {lit(_STRING_GROUP)}, {lit(_STRING_MARK)})"
    numbers = f"replaceRegexpAll({strings}, {lit(_NUMBER_GROUP)}, {lit(_NUMBER_MARK)})"
    return f"replaceRegexpOne({numbers}, {lit(_END_MARKS)}, '')"


def _unmarked(raw: str) -> str:
    """An object or array read from a marked document, as canonical JSON: markers removed,
    numbers written as their literal, string escapes as Python's json.dumps writes them
    (ClickHouse escapes U+2028/U+2029 and may write hex digits in upper case)."""
    escape = (
        "multiIf(ue = '\\\\u2028', '\u2028', ue = '\\\\u2029', '\u2029', "
        "startsWith(ue, '\\\\u'), lower(ue), ue)"
    )
    string = f"arrayStringConcat(arrayMap(ue -> {escape}, extractAll(substring(ut, 3), {lit(_ESCAPES)})))"
    token = (
        f"multiIf(startsWith(ut, '\"n'), substring(ut, 3, length(ut) - 3), "
        f"startsWith(ut, '\"s'), concat('\"', {string}), ut)"
    )
    return f"arrayStringConcat(arrayMap(ut -> {token}, extractAll({raw}, {lit(_RAW_TOKENS)})))"


def _keys(path: Sequence[str], prefix: str = "") -> str:
    return ", ".join(lit(prefix + k) for k in path)


# Kinds of the value at a path (from JSONType): how its text form and number are read.
NONE, STRING, INTEGER, BOOL, DOUBLE, COMPOSITE = 0, 1, 2, 3, 4, 5
# A document ClickHouse cannot parse (a number beyond Float64's range, 1e400, is valid JSON
# and kept exactly by the embedded engine) is read from its marked form, where every number
# is a string: its strings and booleans then come from there.
MARKED_STRING, MARKED_BOOL = 6, 7


def _kind(props: str, keys: Sequence[str]) -> str:
    kind = f"JSONType({props}, {_keys(keys)})"
    return (f"multiIf({kind} = 'String', {STRING}, {kind} IN ('Int64', 'UInt64'), {INTEGER}, {kind} = 'Bool', {BOOL}, "
            f"{kind} = 'Double', {DOUBLE}, {kind} IN ('Object', 'Array'), {COMPOSITE}, {NONE})")


def _marked_kind(mk: str, keys: Sequence[str]) -> str:
    skeys = _keys(keys, "s")
    kind = f"JSONType({mk}, {skeys})"
    return (f"multiIf({kind} = 'String', if(startsWith(JSONExtractRaw({mk}, {skeys}), '\"n'), {DOUBLE}, {MARKED_STRING}), "
            f"{kind} = 'Bool', {MARKED_BOOL}, {kind} IN ('Object', 'Array'), {COMPOSITE}, {NONE})")


def _text(props: str, keys: Sequence[str], kind: str, mk: str) -> str:
    plain = _keys(keys)
    skeys = _keys(keys, "s")
    raw = f"JSONExtractRaw({mk}, {skeys})"
    literal = f"substring({raw}, 3, length({raw}) - 3)"
    return (
        f"multiIf({kind} = {STRING}, toNullable(JSONExtractString({props}, {plain})), "
        f"{kind} = {INTEGER}, toNullable(JSONExtractRaw({props}, {plain})), "
        f"{kind} = {BOOL}, toNullable(if(JSONExtractBool({props}, {plain}), 'true', 'false')), "
        f"{kind} = {DOUBLE}, toNullable(if({literal} = '-0', '0', {literal})), "
        f"{kind} = {COMPOSITE}, toNullable({_unmarked(raw)}), "
        f"{kind} = {MARKED_STRING}, toNullable(substring(JSONExtractString({mk}, {skeys}), 2)), "
        f"{kind} = {MARKED_BOOL}, toNullable(if(JSONExtractBool({mk}, {skeys}), 'true', 'false')), "
        f"NULL)"
    )


class Paths:
    """Columns for property paths, computed in layers over a row set that has `props`:
    `h<i>` (the literal dotted key is there), `k<i>` (the kind of value), `bad` (ClickHouse
    cannot parse the document), `mk` (the marked document, only for rows where some path
    holds a non-integer number, an object or an array, or that cannot be parsed), `x<i>` and
    `l<i>` (kind and literal-key flag, read from `mk` for those), `t<i>` (the text form); each name starts with `prefix`, so two sets of paths can
    be computed one after the other (filters first, then what is left). Layers keep each
    expensive piece computed once a row."""

    def __init__(self, paths: Sequence[str], props: str = "properties", prefix: str = "") -> None:
        self.paths = list(paths)
        self.props = props
        self.pre = prefix

    def name(self, path: str) -> str:
        return f"{self.pre}t{self.paths.index(path)}"

    def layers(self) -> list[list[str]]:
        if not self.paths:
            return []
        p, pre = self.props, self.pre
        mk, bad = f"{pre}mk", f"{pre}bad"
        kinds, finals, texts = [], [], []
        slow, none = [], []
        for i, path in enumerate(self.paths):
            k, h, x, lf, t = (f"{pre}{c}{i}" for c in "khxlt")
            parts = path.split(".")
            if parts == [path]:
                kinds.append(f"{_kind(p, parts)} AS {k}")
                finals.append(f"if({bad}, {_marked_kind(mk, parts)}, {k}) AS {x}")
                texts.append(f"{_text(p, parts, x, mk)} AS {t}")
            else:
                kinds.append(f"JSONHas({p}, {lit(path)}) AS {h}")
                kinds.append(f"if({h}, {_kind(p, [path])}, {_kind(p, parts)}) AS {k}")
                finals.append(f"if({bad}, JSONHas({mk}, {lit('s' + path)}), {h}) AS {lf}")
                finals.append(f"if({bad}, if({lf}, {_marked_kind(mk, [path])}, {_marked_kind(mk, parts)}), {k}) AS {x}")
                texts.append(f"if({lf}, {_text(p, [path], x, mk)}, {_text(p, parts, x, mk)}) AS {t}")
            slow.append(f"{k} IN ({DOUBLE}, {COMPOSITE})")
            none.append(f"{k} = {NONE}")
        # nothing found at any path: perhaps a document ClickHouse cannot parse (checked only then)
        unreadable = [f"{' AND '.join(none)} AND NOT isValidJSON({p}) AS {bad}"]
        marking = [f"if({' OR '.join(slow)} OR {bad}, {marked(p)}, '') AS {mk}"]
        return [kinds, unreadable, marking, finals, texts]

    def number_layers(self, path: str) -> list[list[str]]:
        """After `layers`: `st` (skip status) and `val` (exact Decimal256(18) value, NULL
        unless st is OK) of the value at `path`. Integers are read directly; a text that has
        the plain form (digits, point, ≤ 18 places) needs one regular expression; only other
        texts (white space, exponents, very long) go through the full rule."""
        i = self.paths.index(path)
        k, t = f"{self.pre}x{i}", f"{self.pre}t{i}"
        texts = f"({STRING}, {DOUBLE}, {MARKED_STRING})"
        plain = f"{k} = {INTEGER} OR ({k} IN {texts} AND match({t}, {lit(_FAST)}))"
        tr = f"if({k} IN {texts} AND NOT ({plain}), {trimmed(t)}, '') AS tr"
        st = (f"multiIf({k} = {NONE}, {MISSING}, {k} IN ({BOOL}, {COMPOSITE}, {MARKED_BOOL}), {NOT_NUMBER}, {plain}, {OK}, "
              f"{status(t, 'tr')}) AS st")
        # a zero written with a huge exponent (0e-99999999999) is in range, but too long to parse
        zero = r"^[+-]?0*\.?0*([eE][+-]?[0-9]+)?$"
        val = (f"if(st = {OK}, if(tr != '' AND match(tr, {lit(zero)}), toDecimal256(0, {SCALE}), "
               f"toDecimal256OrNull(if(tr = '', {t}, tr), {SCALE})), NULL) AS val")
        return [[tr], [st], [val]]


def select_layers(inner: str, layers: Sequence[Sequence[str]]) -> str:
    """`SELECT *, <layer> FROM (...)` for each layer in turn."""
    query = inner
    for layer in layers:
        if layer:
            query = f"SELECT *, {', '.join(layer)} FROM ({query})"
    return query


def trimmed(text: str) -> str:
    return f"replaceRegexpAll({text}, {lit(_TRIM)}, '')"


def status(text: str, trim: str) -> str:
    """SQL: the skip status of a text form for sum/max/min/latest (OK … OUT_OF_RANGE), as
    metering.values.in_range decides it. `trim` is the trimmed text (a column)."""
    ip = f"extract({trim}, '^[+-]?([0-9]*)')"
    fp = f"extract({trim}, '^[+-]?[0-9]*\\\\.([0-9]*)')"
    exp_text = f"extract({trim}, '[eE]([+-]?[0-9]+)$')"
    # exponents beyond 9 digits are clamped: such a value is out of range unless it is 0
    exp = (
        f"if(length(replaceRegexpOne({exp_text}, '^[+-]?0*', '')) > 9, "
        f"if(startsWith({exp_text}, '-'), -1000000000, 1000000000), toInt64OrZero({exp_text}))"
    )
    digits = f"replaceRegexpOne(concat({ip}, {fp}), '^0+', '')"
    e = f"({exp} - toInt64(length({fp})))"
    nonzero = f"({digits} != '')"
    adjusted = f"if({nonzero}, {e} + toInt64(length({digits})) - 1, {e})"
    trailing = f"toInt64(length({digits}) - length(replaceRegexpOne({digits}, '0+$', '')))"
    normal_exp = f"if({nonzero}, {e} + {trailing}, 0)"
    in_range = f"(({e} >= -{SCALE} OR {normal_exp} >= -{SCALE}) AND {adjusted} < {MAX_INT_DIGITS})"
    return (
        f"multiIf({text} IS NULL, {MISSING}, NOT match({trim}, {lit(_LOOSE)}), {NOT_NUMBER}, "
        f"{in_range}, {OK}, {OUT_OF_RANGE})"
    )

