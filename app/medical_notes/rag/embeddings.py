"""Text embedders: a deterministic offline one, and the OpenAI (or compatible) embeddings API."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np

from medical_notes.config import LOCAL_EMBEDDING_MODEL, Settings
from medical_notes.providers.base import ProviderError

LOCAL_PROVIDER = "local"
LOCAL_MODEL = LOCAL_EMBEDDING_MODEL
LOCAL_DIM = 1024
OPENAI_BATCH_SIZE = 64

# Word pairs carry phrases such as "blood pressure" or "loading dose"; they count a little less than
# single words so that a query sharing only word order noise does not dominate.
_PAIR_WEIGHT = 0.6

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
# Grammatical words, plus words that clinical questions use without saying what they are about.
_STOP_WORDS = frozenset(
    """
    a about after all also an and any are as at be been before being but by can could do does during
    each for from give had has have how i if in into is it its level levels may me might more most
    much my need needed needs no not of often on once one or other our over patient patients people
    person recommend recommended same should so some such than that the their them then there these
    they this those through to too under until up using very was we were what when where which while
    who whom why will with within would you your
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_STEM_LENGTH = 6
_SUFFIXES = ("ations", "ation", "ments", "ment", "ness", "ities", "ity", "ing", "ies", "ied", "ed", "s")


@runtime_checkable
class Embedder(Protocol):
    provider: str
    model: str
    dim: int  # 0 until known (the OpenAI embedder learns it from the first response)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim) with L2-normalised rows."""
        ...

    async def aclose(self) -> None: ...


def create_embedder(settings: Settings) -> Embedder:
    settings.check_embedding_credentials()
    if settings.embedding_provider == LOCAL_PROVIDER:
        return LocalHashEmbedder()
    assert settings.embedding_api_key is not None
    return OpenAIEmbedder(
        model=settings.embedding_model,
        api_key=settings.embedding_api_key.get_secret_value(),
        base_url=settings.embedding_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


def normalise_words(text: str) -> list[str]:
    """Lowercase, drop punctuation and stop words, and strip common English suffixes."""
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOP_WORDS]


def _stem(word: str) -> str:
    if word[0].isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word[:_STEM_LENGTH]


@lru_cache(maxsize=1 << 16)
def _feature_slot(feature: str) -> tuple[int, float]:
    """Signed feature hashing: a stable bucket and sign per feature (Python's hash() is salted)."""
    value = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
    return value % LOCAL_DIM, 1.0 if value >> 63 else -1.0


class LocalHashEmbedder:
    """Deterministic, offline bag of words and word pairs; no model download, no network."""

    provider = LOCAL_PROVIDER
    model = LOCAL_MODEL
    dim = LOCAL_DIM

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = normalise_words(text)
            features: Counter[str] = Counter(words)
            pairs = Counter(f"{first} {second}" for first, second in itertools.pairwise(words))
            for feature, count in features.items():
                slot, sign = _feature_slot(feature)
                matrix[row, slot] += sign * (1.0 + math.log(count))
            for feature, count in pairs.items():
                slot, sign = _feature_slot(feature)
                matrix[row, slot] += sign * _PAIR_WEIGHT * (1.0 + math.log(count))
        return l2_normalise(matrix)

    async def aclose(self) -> None:
        return None


class OpenAIEmbedder:
    """The embeddings endpoint of OpenAI or any compatible server (vLLM, Ollama, llama.cpp)."""

    provider = "openai"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        batch_size: int = OPENAI_BATCH_SIZE,
    ) -> None:
        # The SDK is imported only when selected, so the local default starts without loading it.
        from openai import AsyncOpenAI

        self.model = model
        self.dim = 0
        self._batch_size = batch_size
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            rows.extend(await self._embed_batch(batch))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        if self.dim and matrix.shape[1] != self.dim:
            raise ProviderError(
                f"embedding service returned {matrix.shape[1]} dimensions, earlier responses had {self.dim}"
            )
        self.dim = matrix.shape[1]
        return l2_normalise(matrix)

    async def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        import openai

        try:
            response = await self._client.embeddings.create(
                model=self.model, input=batch, encoding_format="float"
            )
        except openai.APITimeoutError:
            raise ProviderError("embedding service timed out", 504) from None
        except openai.APIConnectionError:
            raise ProviderError("embedding service unreachable", 503) from None
        except openai.RateLimitError:
            raise ProviderError("embedding service rate limit reached", 503) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise ProviderError(
                f"embedding service rejected the API key (HTTP {error.status_code})", 502
            ) from None
        except openai.APIStatusError as error:
            raise ProviderError(f"embedding service returned HTTP {error.status_code}", 502) from None
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(batch) or any(not item.embedding for item in data):
            raise ProviderError(f"embedding service returned {len(data)} embeddings for {len(batch)} inputs")
        lengths = {len(item.embedding) for item in data}
        if len(lengths) != 1:
            raise ProviderError("embedding service returned vectors of different lengths")
        return [list(item.embedding) for item in data]

    async def aclose(self) -> None:
        await self._client.close()


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)
