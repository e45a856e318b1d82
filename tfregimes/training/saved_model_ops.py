"""The ops of a SavedModel that reach outside the computation (files, Python, the network), read from its
saved_model.pb without loading or running anything, so that `evaluate` can refuse such a model unless trusted.

A SavedModel is a program: loading it and calling its signature runs whatever ops its graph and the functions of
its library hold (`tf.io.write_file` writes, `tf.py_function` runs Python). Every node of the graph and of every
library function is checked against `DANGEROUS_OPS` (a deny-list: an op not named there computes on tensors). The
one exception is the checkpoint ops of the save and restore functions that every SavedModel has (its `saver_def`):
loading reads the variables through the restore function (TF1 SavedModels) and nothing here runs the save function.
They are allowed there only, and only if nothing else (another graph node, the object graph's functions) calls them.
"""

from __future__ import annotations

import os
from pathlib import Path

from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2

# Op name -> what it reaches. Sources: tensorflow/core/ops/{io_ops,script_ops,logging_ops,summary_ops,
# dataset_ops,experimental_dataset_ops,lookup_ops,debug_ops,rpc_ops}.cc of TF 2.21.
_FILES = ("WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst", "Save", "SaveV2", "SaveSlices",
          "MergeV2Checkpoints", "Restore", "RestoreV2", "RestoreSlice", "LoadAndRemapMatrix",
          "GenerateVocabRemapping", "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
          "TextLineReader", "TextLineReaderV2", "TFRecordReader", "TFRecordReaderV2", "FixedLengthRecordReader",
          "FixedLengthRecordReaderV2", "WholeFileReader", "WholeFileReaderV2", "LMDBReader",
          "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
          "FixedLengthRecordDatasetV2", "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset",
          "ExperimentalSqlDataset", "SaveDataset", "SaveDatasetV2", "LoadDataset", "SnapshotDataset",
          "SnapshotDatasetV2", "SnapshotDatasetReader", "CacheDataset", "CacheDatasetV2", "DatasetToTFRecord",
          "ExperimentalDatasetToTFRecord", "DistributedSave", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
          "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary",
          "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent", "DebugIdentity", "DebugIdentityV2",
          "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary", "DebugNumericSummaryV2", "DecodeProtoV2",
          "EncodeProto")
_PYTHON = ("PyFunc", "PyFuncStateless", "EagerPyFunc")
_NETWORK = ("RpcServer", "RpcServerStart", "RpcServerRegister", "RpcClient", "RpcCall", "RpcCheckStatus",
            "RpcGetValue", "Rpc", "TryRpc")
# A serialized graph of its own, which this check cannot see into.
_OPAQUE = ("DatasetFromGraph",)
DANGEROUS_OPS = frozenset(_FILES + _PYTHON + _NETWORK + _OPAQUE)
# tf.print writes to a file when its output_stream is "file://PATH".
_PRINT = "PrintV2"
SAVE_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints"})
RESTORE_OPS = frozenset({"Restore", "RestoreV2", "RestoreSlice"})


def dangerous_ops(saved_model_dir: str | os.PathLike) -> list[str]:
    """The sorted names of the dangerous ops `saved_model_dir`'s saved_model.pb holds outside its checkpoint
    functions (empty: the model only computes). Raises ValueError for a file that is not a SavedModel protobuf."""
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    except DecodeError as error:
        raise ValueError(f"saved_model.pb is not a SavedModel protobuf ({error})") from None
    found: set[str] = set()
    for meta_graph in saved_model.meta_graphs:
        found |= _meta_graph_dangerous_ops(meta_graph)
    return sorted(found)


def _meta_graph_dangerous_ops(meta_graph) -> set[str]:
    graph = meta_graph.graph_def
    functions = {function.signature.name: function for function in graph.library.function}
    nodes = {node.name: node for node in graph.node}
    saver = meta_graph.saver_def
    save_nodes = _input_closure(nodes, saver.save_tensor_name) if saver.save_tensor_name else set()
    restore_nodes = _input_closure(nodes, saver.restore_op_name) if saver.restore_op_name else set()
    # Everything that may run other than through the saver: the other graph nodes and the object graph's functions.
    other_roots = {function for name, node in nodes.items() if name not in save_nodes | restore_nodes
                   for function in _called(node, functions)}
    other_roots |= set(meta_graph.object_graph_def.concrete_functions) & set(functions)
    strict = _function_closure(functions, other_roots)
    save_functions = _function_closure(functions, {f for n in save_nodes for f in _called(nodes[n], functions)})
    restore_functions = _function_closure(functions,
                                          {f for n in restore_nodes for f in _called(nodes[n], functions)})

    def allowed(op: str, in_save: bool, in_restore: bool) -> bool:
        return (in_save and op in SAVE_OPS) or (in_restore and op in RESTORE_OPS)

    found = {node.op for name, node in nodes.items()
             if _is_dangerous(node) and not allowed(node.op, name in save_nodes, name in restore_nodes)}
    for name, function in functions.items():
        in_save = name in save_functions and name not in strict
        in_restore = name in restore_functions and name not in strict
        found |= {node.op for node in function.node_def
                  if _is_dangerous(node) and not allowed(node.op, in_save, in_restore)}
    return found


def _is_dangerous(node) -> bool:
    if node.op == _PRINT:
        return node.attr["output_stream"].s.decode(errors="replace").startswith("file://")
    return node.op in DANGEROUS_OPS


def _input_closure(nodes: dict, tensor_name: str) -> set[str]:
    """The graph nodes `tensor_name` ("node:0" or "node") depends on, itself included."""
    pending, seen = [tensor_name], set()
    while pending:
        name = pending.pop().lstrip("^").split(":")[0]
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        pending.extend(nodes[name].input)
    return seen


def _called(node, functions: dict) -> set[str]:
    """The library functions a node calls: as its op (a direct call) or through function-valued attributes."""
    called = {node.op} & set(functions)
    for value in node.attr.values():
        if value.HasField("func"):
            called.add(value.func.name)
        called.update(function.name for function in value.list.func)
    return called & set(functions)


def _function_closure(functions: dict, roots: set[str]) -> set[str]:
    pending, seen = list(roots), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            pending.extend(_called(node, functions) - seen)
    return seen
