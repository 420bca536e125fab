"""The offline terminology tables: ICD-10-CM (compiled), RxNorm ingredients, LOINC subset, UCUM units.

Everything is read once per process and kept read-only (`terminology()` is cached). The compiled
ICD-10-CM table lives in TERMINOLOGY_DIR (default app/data/terminology); when it is missing and the
`simple-icd-10-cm` package is installed (development, tests) it is compiled on first use. An imported
RxNorm prescribable table (`terminology import-rxnorm`) in the same directory extends the shipped one.
"""

from __future__ import annotations

import dataclasses
import gzip
import heapq
import logging
import os
import re
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from medical_notes.extraction.lexicon import american

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_TERMINOLOGY_DIR = Path(__file__).resolve().parents[2] / "data" / "terminology"
ICD10CM_FILE = "icd10cm.tsv.gz"
RXNORM_IMPORTED_FILE = "rxnorm-prescribable.tsv.gz"
# The multiple-ingredient concepts (TTY=MIN) of the same import, in rxnorm_products.tsv's columns.
RXNORM_PRODUCTS_IMPORTED_FILE = "rxnorm-products.tsv.gz"

ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"

_WORD = re.compile(r"[a-z0-9]+(?:'s)?")
# Words that say nothing about which code fits; ignored by the code search.
_STOPWORDS = frozenset(
    {"a", "an", "and", "or", "of", "the", "in", "to", "for", "on", "by", "as", "at", "due", "other"}
    | {"unspecified", "nos", "not", "elsewhere", "classified", "type", "site"}
)


# A word found in more titles than this is too common to select candidate codes by.
COMMON_WORD_CODES = 3000
# How many candidate codes, by shared words, get the full Dice comparison.
SHORTLIST_SIZE = 300
# Code searches are repeated across notes ("type 2 diabetes mellitus"); answers are kept up to this many.
SEARCH_CACHE_ENTRIES = 4096


class TerminologyUnavailable(RuntimeError):
    """The compiled ICD-10-CM table is missing and cannot be built here (message says what to run)."""


def terminology_dir() -> Path:
    configured = os.environ.get("TERMINOLOGY_DIR")
    return Path(configured) if configured else DEFAULT_TERMINOLOGY_DIR


def normalize(text: str) -> str:
    """Lower case, words only, single spaces, American spelling: the form of every lexicon and search key."""
    return " ".join(american(word) for word in _WORD.findall(text.lower().replace("\u2019", "'")))


def content_words(text: str) -> list[str]:
    return [_stem(word) for word in normalize(text).split() if word not in _STOPWORDS]


_WITHOUT = re.compile(r"\bwithout\b[^,;]*", re.IGNORECASE)


def search_words(text: str) -> frozenset[str]:
    """Content words for the code search. "without X" is dropped from both sides: it is what a title says
    when X is absent, so "acute cystitis" fits "Acute cystitis without hematuria" best."""
    return frozenset(content_words(_WITHOUT.sub("", text)))


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class IcdCode:
    code: str
    billable: bool
    description: str
    inclusion: tuple[str, ...]


@dataclass(frozen=True)
class Ingredient:
    rxcui: str
    name: str
    brands: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Product:
    """A combination product: the RxNorm multiple-ingredient concept (MIN) and its ingredients."""

    key: str  # the sorted ingredient RxCUIs joined by "+"
    name: str  # "sacubitril / valsartan" (RxNorm's MIN name: ingredient names in alphabetical order)
    min_rxcui: str | None  # None when the table has no verified MIN code
    ingredients: tuple[str, ...]  # ingredient RxCUIs, in the order of `name`
    brands: tuple[str, ...]
    aliases: tuple[str, ...]
    source: str
    version: str


def product_key(rxcuis: tuple[str, ...] | list[str]) -> str:
    return "+".join(sorted(rxcuis, key=lambda c: (len(c), c)))


@dataclass(frozen=True)
class LoincEntry:
    code: str
    kind: str  # "vital" | "lab"
    name: str  # canonical name used in the extraction output
    display: str
    aliases: tuple[str, ...]
    unit: str | None


@dataclass(frozen=True)
class CodeCandidate:
    code: str
    display: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "display": self.display, "score": round(self.score, 3)}


@dataclass(eq=False)  # compared and hashed by identity: one instance per loaded table set
class Terminology:
    icd10cm: dict[str, IcdCode]
    icd10cm_version: str
    condition_terms: dict[str, str]  # normalized phrase -> ICD-10-CM code (curated)
    description_terms: dict[str, str]  # normalized description / inclusion term -> code
    ingredients: dict[str, Ingredient]  # rxcui -> ingredient
    drug_names: dict[str, str]  # normalized ingredient or brand name -> rxcui
    rxnorm_version: str
    loinc: dict[str, LoincEntry]
    lab_aliases: dict[str, str]  # normalized alias -> LOINC code
    ucum: dict[str, str]  # lower-case spelling -> UCUM code
    ucum_codes: frozenset[str]
    products: dict[str, Product] = field(default_factory=dict)  # product key -> product
    product_names: dict[str, str] = field(default_factory=dict)  # normalized brand / alias -> product key
    brand_names: dict[str, str] = field(default_factory=dict)  # normalized brand -> the brand as written
    _children: dict[str, list[str]] = field(default_factory=dict)
    _index: dict[str, list[str]] | None = None
    _names: dict[str, list[frozenset[str]]] = field(default_factory=dict)
    _search_cache: dict[tuple[frozenset[str], int], list[CodeCandidate]] = field(default_factory=dict)
    _index_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- ICD-10-CM -------------------------------------------------------------------------------
    def billable_code(self, code: str) -> str | None:
        """The code itself when billable, else its most general billable descendant ("unspecified")."""
        entry = self.icd10cm.get(code)
        while entry is not None and not entry.billable:
            children = self._children.get(entry.code, [])
            if not children:
                return None
            ending_in_9 = [c for c in children if c.endswith("9")]
            unspecified = [c for c in children if "unspecified" in self.icd10cm[c].description.lower()]
            entry = self.icd10cm[(ending_in_9 or unspecified or children)[0]]
        return entry.code if entry else None

    def search_icd10cm(self, text: str, limit: int = 5) -> list[CodeCandidate]:
        """Billable codes whose description or an inclusion term shares the most words with `text`
        (Dice coefficient over content words; ties go to the shorter, more general code)."""
        query = search_words(text)
        if not query:
            return []
        cache_key = (query, limit)
        cached = self._search_cache.get(cache_key)
        if cached is not None:
            return cached
        ranked = self._search(query)[:limit]
        with self._index_lock:
            if len(self._search_cache) >= SEARCH_CACHE_ENTRIES:
                self._search_cache.clear()
            self._search_cache[cache_key] = ranked
        return ranked

    def _search(self, query: frozenset[str]) -> list[CodeCandidate]:
        index, names = self._word_index()
        # Words in thousands of titles ("with", "chronic") do not pick codes; they only rank the shortlist.
        postings = [index[word] for word in query if word in index]
        selective = [codes for codes in postings if len(codes) <= COMMON_WORD_CODES] or postings
        overlap: dict[str, int] = defaultdict(int)
        for codes in selective:
            for code in codes:
                overlap[code] += 1
        if not overlap:
            return []
        shortlist = heapq.nlargest(SHORTLIST_SIZE, overlap, key=lambda code: (overlap[code], -len(code)))
        ranked: list[CodeCandidate] = []
        for code in shortlist:
            score = max(2 * len(query & words) / (len(query) + len(words)) for words in names[code])
            description = self.icd10cm[code].description
            if description.startswith("Other "):
                score -= 0.01  # "Other X" is for named variants the text did not name
            ranked.append(CodeCandidate(code, description, max(score, 0.0)))
        ranked.sort(key=lambda c: (-c.score, len(c.code), c.code))
        return ranked

    def _word_index(self) -> tuple[dict[str, list[str]], dict[str, list[frozenset[str]]]]:
        """word -> billable codes whose names contain it; code -> the word sets of its names."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    index: dict[str, list[str]] = defaultdict(list)
                    names: dict[str, list[frozenset[str]]] = {}
                    shared_sets: dict[frozenset[str], frozenset[str]] = {}
                    for entry in self.icd10cm.values():
                        if not entry.billable:
                            continue
                        # shared word strings and word sets: the index holds ~75,000 codes
                        word_sets = [
                            shared_sets.setdefault(words, words)
                            for words in (
                                frozenset(sys.intern(word) for word in search_words(name))
                                for name in (entry.description, *entry.inclusion)
                            )
                            if words
                        ]
                        if not word_sets:
                            continue
                        names[entry.code] = word_sets
                        for word in frozenset().union(*word_sets):
                            index[word].append(entry.code)
                    self._names = names
                    self._index = dict(index)
        return self._index, self._names

    # -- versions ---------------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        return {
            "icd10cm": self.icd10cm_version,
            "rxnorm": self.rxnorm_version,
            "loinc": "subset-2026.1 (LOINC 2.80 codes)",
            "ucum": "subset-2026.1",
        }


# ---- loading ------------------------------------------------------------------------------------
def _data_rows(path: Path) -> list[list[str]]:
    """Tab-separated rows without comments and without the header line."""
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    header_seen = False
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            continue
        rows.append(line.split("\t"))
    return rows


def _read_icd10cm(path: Path) -> tuple[dict[str, IcdCode], str]:
    codes: dict[str, IcdCode] = {}
    version = "unknown"
    with gzip.open(path, "rt", encoding="utf-8") as file:
        for line in file:
            parts = line.rstrip("\n").split("\t")
            if parts[0].startswith("#icd10cm"):
                version = f"CDC ICD-10-CM {parts[2]} (simple-icd-10-cm {parts[1]})"
                continue
            code, billable, description, inclusion = parts
            terms = tuple(term for term in inclusion.split(" | ") if term)
            codes[code] = IcdCode(code, billable == "1", description, terms)
    return codes, version


def ensure_icd10cm_table(directory: Path) -> Path:
    """The compiled table's path; compiled now when missing and the source package is installed."""
    path = directory / ICD10CM_FILE
    if path.exists():
        return path
    if (
        DEFAULT_TERMINOLOGY_DIR / ICD10CM_FILE
    ).exists():  # the image's table, when TERMINOLOGY_DIR holds imports
        return DEFAULT_TERMINOLOGY_DIR / ICD10CM_FILE
    try:
        from medical_notes.extraction.icd10cm_build import build_icd10cm_table

        log.warning("compiling the ICD-10-CM table into %s (first use)", path)
        build_icd10cm_table(path)
    except ImportError as error:
        raise TerminologyUnavailable(
            f"ICD-10-CM table {path} is missing; run `python -m medical_notes terminology build-icd10cm` "
            "with simple-icd-10-cm installed (requirements-terminology.txt)"
        ) from error
    except OSError as error:
        raise TerminologyUnavailable(f"cannot write the ICD-10-CM table {path}: {error.strerror}") from error
    return path


def _table_rows(path: Path) -> list[list[str]]:
    """Rows of a shipped .tsv (comments, header) or of an imported .tsv.gz (header only)."""
    if path.suffix != ".gz":
        return _data_rows(path)
    with gzip.open(path, "rt", encoding="utf-8") as file:
        lines = file.read().splitlines()
    return [line.split("\t") for line in lines[1:] if line and not line.startswith("#")]


def _read_ingredients(path: Path, source: str | None = None) -> list[Ingredient]:
    ingredients = []
    rows = _table_rows(path)
    for row in rows:
        rxcui, name, brands, row_source = row[0], row[1], row[2], row[3]
        brand_names = tuple(brand for brand in brands.split("|") if brand)
        ingredients.append(Ingredient(rxcui, name, brand_names, source or row_source))
    return ingredients


def _read_products(
    path: Path, ingredients: dict[str, Ingredient], products: dict[str, Product] | None = None
) -> tuple[dict[str, Product], dict[str, str]]:
    """Combination products of `path`. With `products` (the shipped ones), `path` is an import: its MIN
    codes and brands complete the shipped products, its other products are added, and a product whose
    ingredients are not all known is skipped rather than refused."""
    imported = products is not None
    products = dict(products or {})
    names: dict[str, str] = {}
    for min_rxcui, name, rxcuis, brands, aliases, source, version in _table_rows(path):
        codes = tuple(code for code in rxcuis.split("|") if code)
        missing = [code for code in codes if code not in ingredients]
        if imported and (missing or len(codes) < 2):
            continue
        if missing or len(codes) < 2:
            raise ValueError(f"rxnorm_products.tsv: {name!r} needs ingredients in the table, not {missing}")
        by_name = {ingredients[code].name: code for code in codes}
        ordered = tuple(by_name[n] for n in sorted(by_name))
        product = Product(
            product_key(codes),
            " / ".join(sorted(by_name)),
            min_rxcui or None,
            ordered,
            tuple(b for b in brands.split("|") if b),
            tuple(a for a in aliases.split("|") if a),
            source,
            version,
        )
        shipped = products.get(product.key)
        if shipped is not None and imported:
            product = dataclasses.replace(
                shipped,
                min_rxcui=shipped.min_rxcui or product.min_rxcui,
                brands=tuple(dict.fromkeys((*shipped.brands, *product.brands))),
            )
        products[product.key] = product
        for spelling in (*product.brands, *product.aliases):
            names.setdefault(normalize(spelling), product.key)
    return products, names


def _description_terms(codes: dict[str, IcdCode]) -> dict[str, str]:
    """Short diagnosis names from the tabular list ("Hyponatremia", "Migraine, unspecified" -> "migraine")
    usable as phrases in running text. Chapters whose names read like ordinary words (injuries, external
    causes, encounters) are left to the curated list."""
    terms: dict[str, str] = {}
    for entry in codes.values():
        if entry.code[0] in "STVWXYZ" or not entry.billable:
            continue
        for name in (entry.description, *entry.inclusion):
            # "Trigger finger, unspecified finger" is the plain "trigger finger"
            name = re.sub(r"(?:, (?:unspecified|NOS)\b.*| (?:unspecified|NOS))$", "", name)
            if "(" in name or "," in name or re.search(r" (?:with|without|of|in|and|or|due to)$", name):
                continue
            key = normalize(name)
            if len(key) < 5 or len(key.split()) > 6 or key in terms:
                continue
            terms[key] = entry.code
    return terms


def load_terminology(directory: Path | None = None) -> Terminology:
    directory = directory or terminology_dir()
    icd10cm, icd_version = _read_icd10cm(ensure_icd10cm_table(directory))
    children: dict[str, list[str]] = defaultdict(list)
    for code in icd10cm:
        if "." in code:
            parent = code[:-1].rstrip(".") if len(code) > 4 else code[:3]
            if parent in icd10cm:
                children[parent].append(code)

    condition_terms: dict[str, str] = {}
    for term, code in _data_rows(DATA_DIR / "condition_terms.tsv"):
        if code not in icd10cm or not icd10cm[code].billable:
            raise ValueError(f"condition_terms.tsv: {term!r} maps to {code}, not a billable ICD-10-CM code")
        condition_terms[normalize(term)] = code

    ingredients = _read_ingredients(DATA_DIR / "rxnorm_ingredients.tsv")
    rxnorm_version = "shipped table (2026-11)"
    imported = directory / RXNORM_IMPORTED_FILE
    if imported.exists():
        ingredients += _read_ingredients(imported)
        rxnorm_version += "; imported prescribable content"
    by_rxcui: dict[str, Ingredient] = {}
    drug_names: dict[str, str] = {}
    for ingredient in ingredients:
        by_rxcui.setdefault(ingredient.rxcui, ingredient)
        for name in (ingredient.name, *ingredient.brands):
            drug_names.setdefault(normalize(name), ingredient.rxcui)
    products, product_names = _read_products(DATA_DIR / "rxnorm_products.tsv", by_rxcui)
    imported_products = directory / RXNORM_PRODUCTS_IMPORTED_FILE
    if imported_products.exists():
        products, more_names = _read_products(imported_products, by_rxcui, products)
        product_names = {**more_names, **product_names}
    brand_names = {normalize(b): b for i in by_rxcui.values() for b in i.brands}
    brand_names.update({normalize(b): b for p in products.values() for b in p.brands})
    rxnorm_version = f"{rxnorm_version}: {len(by_rxcui)} ingredients, {len(products)} combination products"

    loinc: dict[str, LoincEntry] = {}
    lab_aliases: dict[str, str] = {}
    for code, kind, name, display, aliases, unit in _data_rows(DATA_DIR / "loinc.tsv"):
        alias_list = tuple(alias for alias in aliases.split("|") if alias)
        loinc[code] = LoincEntry(code, kind, name, display, alias_list, unit or None)
        for alias in alias_list:
            lab_aliases.setdefault(normalize(alias), code)

    ucum: dict[str, str] = {}
    for code, spellings in _data_rows(DATA_DIR / "ucum_units.tsv"):
        for spelling in spellings.split("|"):
            ucum.setdefault(spelling.lower(), code)
    terminology = Terminology(
        icd10cm=icd10cm,
        icd10cm_version=icd_version,
        condition_terms=condition_terms,
        description_terms=_description_terms(icd10cm),
        ingredients=by_rxcui,
        drug_names=drug_names,
        rxnorm_version=rxnorm_version,
        loinc=loinc,
        lab_aliases=lab_aliases,
        ucum=ucum,
        ucum_codes=frozenset(ucum.values()),
        products=products,
        product_names=product_names,
        brand_names=brand_names,
    )
    terminology._children = dict(children)
    return terminology


@cache
def terminology() -> Terminology:
    """The process-wide, read-only tables (loaded on first use)."""
    return load_terminology()


# ---- lookups other modules (FHIR validation) use -----------------------------------------------
def icd10_lookup(code: str) -> str | None:
    entry = terminology().icd10cm.get(code)
    return entry.description if entry else None


def rxnorm_lookup(rxcui: str) -> str | None:
    ingredient = terminology().ingredients.get(rxcui)
    return ingredient.name if ingredient else None


def loinc_lookup(code: str) -> str | None:
    entry = terminology().loinc.get(code)
    return entry.display if entry else None


def is_ucum_unit(unit: str) -> bool:
    return unit in terminology().ucum_codes
