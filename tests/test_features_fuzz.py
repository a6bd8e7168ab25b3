"""Property-based fuzzing of the features-file reader (drfm.evaluation.features_file.load_features).

Generated .npz files (random keys, shapes and dtypes: object, str, bytes, bool, complex, float16,
datetime; NaN/inf; empty arrays; mismatched lengths), plain or compressed, then damaged or not
(truncated, bytes flipped, garbage appended, replaced by noise, a .npy or text file): the reader
returns a valid FeatureSet or raises DrfmError naming the file on one line, never anything
else; `drfm evaluate --features` on the same files exits 0 or 2, with one line on stderr.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drfm.cli import main
from drfm.errors import DrfmError
from drfm.evaluation.features_file import PATH_KEYS, REQUIRED_KEYS, FeatureSet, load_features

DTYPES = ("float64", "float32", "float16", "int64", "int32", "int8", "uint8", "uint64", "bool", "complex64",
          "complex128", "<U4", "|S3", "datetime64[s]", "object")
DAMAGE = ("none", "truncate", "flip", "append", "noise", "npy", "text", "empty")
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def arrays(draw, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An array of a random dtype (object included), of `shape` or a random one (0-d to 3-d, empty sides)."""
    dtype = draw(st.sampled_from(DTYPES))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if dtype == "object":
        items = draw(st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats()),
                              min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        array = np.empty(int(np.prod(shape)), dtype=object)
        array[:] = items
        return array.reshape(shape)
    return draw(hnp.arrays(np.dtype(dtype), shape))


MUTATIONS = ("drop", "replace", "nonfinite", "length", "empty", "no dims", "dtype", "extra")


@st.composite
def valid_contents(draw) -> dict[str, np.ndarray]:
    """The arrays of a valid features file (paths present or not)."""
    dim = draw(st.integers(1, 3))
    contents: dict[str, np.ndarray] = {}
    for side in ("query", "gallery"):
        rows = draw(st.integers(1, 4))
        contents[f"{side}_feats"] = draw(hnp.arrays(np.dtype(draw(st.sampled_from(("float32", "float64", "float16")))),
                                                    (rows, dim), elements=st.floats(-10, 10, width=16)))
        contents[f"{side}_pids"] = draw(hnp.arrays(np.int64, (rows,), elements=st.integers(-1, 3)))
        contents[f"{side}_camids"] = draw(hnp.arrays(np.int64, (rows,), elements=st.integers(0, 2)))
        if draw(st.booleans()):
            contents[f"{side}_paths"] = draw(hnp.arrays(np.dtype("<U6"), (rows,)))
    return contents


@st.composite
def mutated(draw, contents: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`contents` after 0 to 3 mutations: a key dropped or replaced by any array, NaN/inf in
    features, a length off by one, an empty side, zero feature dimensions, another dtype, extra keys."""
    contents = dict(contents)
    keys = (*REQUIRED_KEYS, *PATH_KEYS)
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        key = draw(st.sampled_from(keys))
        side = key.split("_")[0]
        if mutation == "drop":
            contents.pop(key, None)
        elif mutation == "replace":
            contents[key] = draw(arrays())
        elif mutation == "nonfinite":
            feats = contents.get(f"{side}_feats")
            if feats is not None and feats.size and feats.dtype.kind == "f":
                feats = feats.copy()
                feats.flat[draw(st.integers(0, feats.size - 1))] = draw(st.sampled_from((np.nan, np.inf, -np.inf)))
                contents[f"{side}_feats"] = feats
        elif mutation == "length" and key in contents and contents[key].ndim >= 1:
            array = contents[key]
            contents[key] = array[:-1] if draw(st.booleans()) else np.concatenate([array, array[:1]])
        elif mutation == "empty" and contents.get(f"{side}_feats", np.empty(())).ndim >= 1:
            contents[f"{side}_feats"] = contents[f"{side}_feats"][:0]
        elif mutation == "no dims" and contents.get(f"{side}_feats", np.empty(())).ndim == 2:
            contents[f"{side}_feats"] = contents[f"{side}_feats"][:, :0]
        elif mutation == "dtype" and key in contents:
            contents[key] = draw(arrays(shape=contents[key].shape))
        elif mutation == "extra":
            name = draw(st.text("abcxyz_.-/ ", min_size=1, max_size=6))
            if name not in keys:
                contents[name] = draw(arrays())
    return contents


@st.composite
def feature_files(draw) -> bytes:
    """The bytes of a generated, possibly damaged features file."""
    contents = draw(mutated(draw(valid_contents())))
    buffer = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buffer, **contents)
    data = buffer.getvalue()
    damage = draw(st.sampled_from(("none",) * len(DAMAGE) + DAMAGE))
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip":
        raw = bytearray(data)
        for position in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[position] ^= draw(st.integers(1, 255))
        data = bytes(raw)
    elif damage == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    elif damage == "noise":
        data = draw(st.sampled_from((b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"))) + draw(st.binary(max_size=200))
    elif damage == "npy":
        npy = io.BytesIO()
        np.save(npy, draw(arrays()), allow_pickle=True)
        data = npy.getvalue()
    elif damage == "text":
        data = draw(st.text(max_size=100)).encode()
    elif damage == "empty":
        data = b""
    return data


def check_feature_set(features: FeatureSet) -> None:
    """What load_features promises about the arrays it returns."""
    for side in ("query", "gallery"):
        feats = getattr(features, f"{side}_feats")
        assert feats.ndim == 2 and feats.shape[0] > 0 and feats.shape[1] > 0
        assert feats.dtype.kind in "fiu" and np.isfinite(feats.astype(np.float64)).all()
        for column in ("pids", "camids"):
            values = getattr(features, f"{side}_{column}")
            assert values.dtype.kind in "iu" and values.shape == (feats.shape[0],)
        paths = getattr(features, f"{side}_paths")
        assert paths is None or (paths.dtype.kind == "U" and paths.shape == (feats.shape[0],))
    assert features.query_feats.shape[1] == features.gallery_feats.shape[1]


@SETTINGS
@given(data=feature_files())
def test_load_features_returns_a_valid_set_or_raises_drfm_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.npz"
        path.write_bytes(data)
        try:
            features = load_features(path)
        except DrfmError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ") and "\n" not in message
            event("refused")
        else:
            check_feature_set(features)
            event("loaded")


@settings(SETTINGS, max_examples=60)
@given(data=feature_files())
def test_drfm_evaluate_features_exits_0_or_2_with_one_line(data, capsys):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.npz"
        path.write_bytes(data)
        capsys.readouterr()
        code = main(["evaluate", "--features", str(path), "--trials", "2"])
        err = capsys.readouterr().err
        assert code in (0, 2)
        event(f"exit {code}")
        if code == 2:
            assert len(err.splitlines()) == 1 and err.startswith("drfm: error: ") and "Traceback" not in err


def _zip_of_headers(path: Path, header: dict, payload: bytes = b"") -> Path:
    """An .npz whose every required member claims `header` but holds only `payload` after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(path, "w") as archive:
        for key in REQUIRED_KEYS:
            archive.writestr(f"{key}.npy", buffer.getvalue() + payload)
    return path


@pytest.mark.parametrize("header", [
    {"descr": "<f8", "fortran_order": False, "shape": (2**40, 4)},  # 32 TiB claimed
    {"descr": "<f8", "fortran_order": False, "shape": (3, 4)},      # data cut short
    {"descr": "|O", "fortran_order": False, "shape": (3,)},         # pickled objects
])
def test_members_that_lie_about_their_size_or_hold_objects(tmp_path, header):
    with pytest.raises(DrfmError, match="not a readable .npz features file"):
        load_features(_zip_of_headers(tmp_path / "lies.npz", header, b"\0" * 16))


def test_damaged_compressed_member_and_an_encrypted_flag(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {key: (rng.normal(size=(64, 8)) if key.endswith("feats") else np.arange(64)) for key in REQUIRED_KEYS}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    raw = bytearray(buffer.getvalue())
    raw[200:260] = bytes(60)  # inside the first member's deflate stream
    (tmp_path / "deflate.npz").write_bytes(bytes(raw))
    raw = bytearray(buffer.getvalue())
    raw[raw.index(b"PK\x01\x02") + 8] |= 1  # flags of the first central directory entry: encrypted
    (tmp_path / "encrypted.npz").write_bytes(bytes(raw))
    for name in ("deflate.npz", "encrypted.npz"):
        with pytest.raises(DrfmError, match="not a readable|missing key"):
            load_features(tmp_path / name)


def test_values_beyond_float32_are_refused(tmp_path):
    arrays = {"query_feats": np.full((2, 3), 1e300), "query_pids": np.arange(2), "query_camids": np.zeros(2, int),
              "gallery_feats": np.ones((2, 3)), "gallery_pids": np.arange(2), "gallery_camids": np.ones(2, int)}
    np.savez(tmp_path / "big.npz", **arrays)
    with pytest.raises(DrfmError, match="beyond the float32 range"):
        load_features(tmp_path / "big.npz")
