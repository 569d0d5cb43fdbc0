"""The vertices of a GIFTI surface (``.gii``, e.g. FreeSurfer's fsaverage5 as the ENIGMA
toolbox ships it), read with the standard library: no neuroimaging package needed.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np

from .._errors import SpaconInputError

DTYPES = {"NIFTI_TYPE_FLOAT32": "f4", "NIFTI_TYPE_FLOAT64": "f8", "NIFTI_TYPE_INT32": "i4"}


def read_gifti_points(path: str | Path) -> np.ndarray:
    """The first point set (vertex coordinates, ``NIFTI_INTENT_POINTSET``) of a GIFTI file, as
    a float64 array of vertices x 3.

    Reads the GIFTI encodings ``GZipBase64Binary``, ``Base64Binary`` and ``ASCII``, either
    byte order and either array order; external data files are not read.
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise SpaconInputError(f"{path.name!r} is not a GIFTI surface (.gii XML): {err}") from None
    arrays = [a for a in root.iter("DataArray")
              if a.attrib.get("Intent") == "NIFTI_INTENT_POINTSET"]
    if not arrays:
        raise SpaconInputError(f"{path.name!r} holds no point set (NIFTI_INTENT_POINTSET): "
                               "give a surface, e.g. fsa5_lh.gii.")
    array = arrays[0]
    attrib = array.attrib
    encoding, kind = attrib.get("Encoding", ""), attrib.get("DataType", "")
    dims = [int(attrib.get(f"Dim{i}", 0)) for i in range(int(attrib.get("Dimensionality", 2)))]
    if kind not in DTYPES or len(dims) != 2 or dims[1] != 3:
        raise SpaconInputError(f"{path.name!r}: a point set of {kind} {dims}, not vertices x 3.")
    text = (array.findtext("Data") or "").strip()
    try:
        if encoding == "ASCII":
            values = np.array(text.split(), dtype=np.float64)
        elif encoding in ("GZipBase64Binary", "Base64Binary"):
            raw = base64.b64decode(text)
            raw = zlib.decompress(raw) if encoding == "GZipBase64Binary" else raw
            order = ">" if attrib.get("Endian") == "BigEndian" else "<"
            values = np.frombuffer(raw, dtype=order + DTYPES[kind]).astype(np.float64)
        else:
            raise SpaconInputError(f"{path.name!r}: GIFTI encoding {encoding!r} is not read "
                                   "here (GZipBase64Binary, Base64Binary and ASCII are).")
    except (ValueError, zlib.error) as err:
        raise SpaconInputError(f"{path.name!r}: its point set could not be decoded "
                               f"({err}).") from None
    if values.size != dims[0] * dims[1]:
        raise SpaconInputError(f"{path.name!r}: {values.size} numbers for {dims[0]} x "
                               f"{dims[1]} vertices.")
    column_major = attrib.get("ArrayIndexingOrder") == "ColumnMajorOrder"
    return values.reshape(dims[::-1]).T.copy() if column_major else values.reshape(dims)
