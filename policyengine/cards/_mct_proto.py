"""Model Card Toolkit protobuf text (``.pbtxt``) -> the MCT JSON dict the importer reads.

The message types come from ``model_card.proto`` as the Model Card Toolkit
2.0.0 wheel on PyPI ships it compiled (``model_card_toolkit/proto/
model_card_pb2.py``, Apache-2.0, (c) The TensorFlow Authors): the serialized
``FileDescriptorProto`` below is that file's ``serialized_pb``, unchanged.
It is loaded into a private descriptor pool and parsed with protobuf's own
``text_format``; ``json_format`` then gives the JSON field names MCT's JSON
schema uses, so the JSON importer does the rest. Nothing is fetched.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from policyengine.cards._build import fail

__all__ = ["pbtxt_to_dict"]

# model_card_toolkit 2.0.0, model_card_toolkit/proto/model_card_pb2.py, serialized_pb.
_DESCRIPTOR = (
    "Ciltb2RlbF9jYXJkX3Rvb2xraXQvcHJvdG8vbW9kZWxfY2FyZC5wcm90bxIndGhpcmRfcGFydHkucHkubW9kZWxf"
    "Y2FyZF90b29sa2l0LnByb3RvIiYKBU93bmVyEgwKBG5hbWUYASABKAkSDwoHY29udGFjdBgCIAEoCSIzCgdWZXJz"
    "aW9uEgwKBG5hbWUYASABKAkSDAoEZGF0ZRgCIAEoCRIMCgRkaWZmGAMgASgJIj4KB0xpY2Vuc2USFAoKaWRlbnRp"
    "ZmllchgBIAEoCUgAEhUKC2N1c3RvbV90ZXh0GAIgASgJSABCBgoEdHlwZSIeCglSZWZlcmVuY2USEQoJcmVmZXJl"
    "bmNlGAEgASgJIisKCENpdGF0aW9uEg0KBXN0eWxlGAEgASgJEhAKCGNpdGF0aW9uGAIgASgJIqgDCgxNb2RlbERl"
    "dGFpbHMSDAoEbmFtZRgBIAEoCRIQCghvdmVydmlldxgCIAEoCRIVCg1kb2N1bWVudGF0aW9uGAMgASgJEj4KBm93"
    "bmVycxgEIAMoCzIuLnRoaXJkX3BhcnR5LnB5Lm1vZGVsX2NhcmRfdG9vbGtpdC5wcm90by5Pd25lchJBCgd2ZXJz"
    "aW9uGAUgASgLMjAudGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLlZlcnNpb24SQgoIbGlj"
    "ZW5zZXMYBiADKAsyMC50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJvdG8uTGljZW5zZRJGCgpy"
    "ZWZlcmVuY2VzGAcgAygLMjIudGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLlJlZmVyZW5j"
    "ZRJECgljaXRhdGlvbnMYCCADKAsyMS50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJvdG8uQ2l0"
    "YXRpb24SDAoEcGF0aBgJIAEoCSImCgdHcmFwaGljEgwKBG5hbWUYASABKAkSDQoFaW1hZ2UYAiABKAkibwoSR3Jh"
    "cGhpY3NDb2xsZWN0aW9uEhMKC2Rlc2NyaXB0aW9uGAEgASgJEkQKCmNvbGxlY3Rpb24YAiADKAsyMC50aGlyZF9w"
    "YXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJvdG8uR3JhcGhpYyInCg1TZW5zaXRpdmVEYXRhEhYKDnNlbnNp"
    "dGl2ZV9kYXRhGAEgAygJItQBCgdEYXRhc2V0EgwKBG5hbWUYASABKAkSDAoEbGluaxgCIAEoCRJJCglzZW5zaXRp"
    "dmUYAyABKAsyNi50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJvdG8uU2Vuc2l0aXZlRGF0YRJN"
    "CghncmFwaGljcxgEIAEoCzI7LnRoaXJkX3BhcnR5LnB5Lm1vZGVsX2NhcmRfdG9vbGtpdC5wcm90by5HcmFwaGlj"
    "c0NvbGxlY3Rpb24SEwoLZGVzY3JpcHRpb24YBSABKAkiJAoGS2V5VmFsEgsKA2tleRgBIAEoCRINCgV2YWx1ZRgC"
    "IAEoCSKxAgoPTW9kZWxQYXJhbWV0ZXJzEhoKEm1vZGVsX2FyY2hpdGVjdHVyZRgBIAEoCRI+CgRkYXRhGAIgAygL"
    "MjAudGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLkRhdGFzZXQSFAoMaW5wdXRfZm9ybWF0"
    "GAMgASgJEkkKEGlucHV0X2Zvcm1hdF9tYXAYBSADKAsyLy50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xr"
    "aXQucHJvdG8uS2V5VmFsEhUKDW91dHB1dF9mb3JtYXQYBCABKAkSSgoRb3V0cHV0X2Zvcm1hdF9tYXAYBiADKAsy"
    "Ly50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJvdG8uS2V5VmFsIj4KEkNvbmZpZGVuY2VJbnRl"
    "cnZhbBITCgtsb3dlcl9ib3VuZBgBIAEoCRITCgt1cHBlcl9ib3VuZBgCIAEoCSKZAQoRUGVyZm9ybWFuY2VNZXRy"
    "aWMSDAoEdHlwZRgBIAEoCRINCgV2YWx1ZRgCIAEoCRINCgVzbGljZRgDIAEoCRJYChNjb25maWRlbmNlX2ludGVy"
    "dmFsGAQgASgLMjsudGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLkNvbmZpZGVuY2VJbnRl"
    "cnZhbCK+AQoUUXVhbnRpdGF0aXZlQW5hbHlzaXMSVwoTcGVyZm9ybWFuY2VfbWV0cmljcxgBIAMoCzI6LnRoaXJk"
    "X3BhcnR5LnB5Lm1vZGVsX2NhcmRfdG9vbGtpdC5wcm90by5QZXJmb3JtYW5jZU1ldHJpYxJNCghncmFwaGljcxgC"
    "IAEoCzI7LnRoaXJkX3BhcnR5LnB5Lm1vZGVsX2NhcmRfdG9vbGtpdC5wcm90by5HcmFwaGljc0NvbGxlY3Rpb24i"
    "GwoEVXNlchITCgtkZXNjcmlwdGlvbhgBIAEoCSIeCgdVc2VDYXNlEhMKC2Rlc2NyaXB0aW9uGAEgASgJIiEKCkxp"
    "bWl0YXRpb24SEwoLZGVzY3JpcHRpb24YASABKAkiHwoIVHJhZGVvZmYSEwoLZGVzY3JpcHRpb24YASABKAkiMQoE"
    "UmlzaxIMCgRuYW1lGAEgASgJEhsKE21pdGlnYXRpb25fc3RyYXRlZ3kYAiABKAki8gIKDkNvbnNpZGVyYXRpb25z"
    "EjwKBXVzZXJzGAEgAygLMi0udGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLlVzZXISQwoJ"
    "dXNlX2Nhc2VzGAIgAygLMjAudGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLlVzZUNhc2US"
    "SAoLbGltaXRhdGlvbnMYAyADKAsyMy50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJvdG8uTGlt"
    "aXRhdGlvbhJECgl0cmFkZW9mZnMYBCADKAsyMS50aGlyZF9wYXJ0eS5weS5tb2RlbF9jYXJkX3Rvb2xraXQucHJv"
    "dG8uVHJhZGVvZmYSTQoWZXRoaWNhbF9jb25zaWRlcmF0aW9ucxgFIAMoCzItLnRoaXJkX3BhcnR5LnB5Lm1vZGVs"
    "X2NhcmRfdG9vbGtpdC5wcm90by5SaXNrItwCCglNb2RlbENhcmQSTAoNbW9kZWxfZGV0YWlscxgBIAEoCzI1LnRo"
    "aXJkX3BhcnR5LnB5Lm1vZGVsX2NhcmRfdG9vbGtpdC5wcm90by5Nb2RlbERldGFpbHMSUgoQbW9kZWxfcGFyYW1l"
    "dGVycxgCIAEoCzI4LnRoaXJkX3BhcnR5LnB5Lm1vZGVsX2NhcmRfdG9vbGtpdC5wcm90by5Nb2RlbFBhcmFtZXRl"
    "cnMSXAoVcXVhbnRpdGF0aXZlX2FuYWx5c2lzGAMgASgLMj0udGhpcmRfcGFydHkucHkubW9kZWxfY2FyZF90b29s"
    "a2l0LnByb3RvLlF1YW50aXRhdGl2ZUFuYWx5c2lzEk8KDmNvbnNpZGVyYXRpb25zGAQgASgLMjcudGhpcmRfcGFy"
    "dHkucHkubW9kZWxfY2FyZF90b29sa2l0LnByb3RvLkNvbnNpZGVyYXRpb25z"
)
_PACKAGE = "third_party.py.model_card_toolkit.proto"


@functools.cache
def _message_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode("".join(_DESCRIPTOR)))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName(f"{_PACKAGE}.ModelCard")
    return message_factory.GetMessageClass(descriptor)


def pbtxt_to_dict(text: str, source: str) -> dict[str, Any]:
    """Parse MCT protobuf text into the dict MCT's JSON export has.

    Raises:
        CardImportError: protobuf is not installed (with the conversion command),
            or the text does not parse as a ModelCard message (line and column).
    """
    try:
        from google.protobuf import json_format, text_format
    except ImportError:
        raise fail(
            source,
            "$",
            "reading protobuf text needs the protobuf package: pip install protobuf "
            "(or pip install 'policyengine[evidence]')",
        ) from None
    message = _message_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise fail(source, "protobuf text", f"not a Model Card Toolkit ModelCard: {exc}") from exc
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))
