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
_TOKENS = f'{_JSON_STRING}|{_JSON_NUMBER}|[^"0-9-]+'
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
    reads as a number. Keys are strings too, so paths over it prefix each key with `s`."""
    token = (
        f"multiIf(startsWith(mt, '\"'), concat('\"s', substring(mt, 2)), "
        f"match(mt, '^-?[0-9]'), concat('\"n', mt, '\"'), mt)"
    )
    return f"arrayStringConcat(arrayMap(mt -> {token}, extractAll({props}, {lit(_TOKENS)})))"


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


def _at(props: str, keys: Sequence[str]) -> str:
    """Text form of the value at these nested keys (NULL: missing or JSON null)."""
    plain = _keys(keys)
    slow_raw = f"JSONExtractRaw({marked(props)}, {_keys(keys, 's')})"
    slow = (
        f"multiIf(startsWith({slow_raw}, '\"n'), "
        f"if(substring({slow_raw}, 3, length({slow_raw}) - 3) = '-0', '0', substring({slow_raw}, 3, length({slow_raw}) - 3)), "
        f"{_unmarked(slow_raw)})"
    )
    kind = f"JSONType({props}, {plain})"
    return (
        f"multiIf({kind} = 'String', toNullable(JSONExtractString({props}, {plain})), "
        f"{kind} IN ('Int64', 'UInt64'), toNullable(JSONExtractRaw({props}, {plain})), "
        f"{kind} = 'Bool', toNullable(if(JSONExtractBool({props}, {plain}), 'true', 'false')), "
        f"{kind} IN ('Double', 'Object', 'Array'), toNullable({slow}), "
        f"NULL)"
    )


def text_form(path: str, props: str = "properties") -> str:
    """SQL: the text form (Nullable(String)) of the value at a dot path, by contract §2's
    path rule (a literal key equal to the whole path wins, else nested keys)."""
    literal = _at(props, [path])
    parts = path.split(".")
    if parts == [path]:
        return literal
    return f"if(JSONHas({props}, {lit(path)}), {literal}, {_at(props, parts)})"


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


def value(trim: str, st: str) -> str:
    """SQL: the exact Decimal256(18) value of a trimmed text whose status is OK (else NULL)."""
    return f"if({st} = {OK}, toDecimal256OrNull({trim}, {SCALE}), NULL)"
