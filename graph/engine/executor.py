"""A graphql-core executor that completes plain fields without per-field machinery.

graphql-core resolves every field alike: a resolve-info object, Strawberry's resolver
wrapper, an awaitable check and a type dispatch per field, 8-12 us each, so a page of
100 jobs spends most of its time there. Most of our fields are *plain*: a Strawberry
field without resolver, permission or extension, whose value is the attribute of the
same Python name. This executor reads those directly and completes lists of objects
whose fields are plain in one loop; everything else (resolvers, arguments, abstract
types, directives other than @skip/@include) goes through graphql-core unchanged.

Exactness: the response and the errors must be the ones graphql-core gives. Reading a
plain field has no side effect, so each object is completed in two phases: first its
leaf fields (scalars, enums and lists of them), which can only fail by a null in a
non-null position or a value its scalar refuses; when one fails, the whole object is
handed to graphql-core, which produces the exact error and null propagation. Then the
other fields in response order, each with graphql-core's own error handling
(``handle_field_error``) around it, so errors bubble to the same nullable parent with
the same path. ``tests/graph/test_fast_path.py`` runs documents through both executors
and compares the results.
"""

from __future__ import annotations

import weakref
from enum import Enum
from typing import Any

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLResolveInfoHelpers
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined

from .internals import ExecutionContext, gather_with_cancel
from .plans import (
    DIRECT,
    GENERIC,
    LEAF,
    LEAF_LIST,
    MAX_SHARED_OPERATIONS,
    OBJECT,
    OBJECT_LIST,
    TYPENAME,
    Bail,
    accepts,
    call_direct,
    compiled_leaves,
    field_kind,
    is_static,
    names_no_variable,
    schema_cache,
    unwrap,
)
from .sharing import event_key, shared_results

MAX_LITERAL_ARGUMENTS = 5_000
"""Fields with literal arguments whose coerced values are kept (all dropped past it)."""
SCALARS = frozenset({str, int, float, bool})


def for_execution(context: Any, executor: Any = None) -> Any:
    """The context one execution (an operation, or one event of a subscription) runs with.

    A WebSocket hands every operation the same context, for as long as it is open; what a
    context caches (DataLoaders) must not outlive the execution that filled it, or a later
    operation would be served what access control has revoked since. A context that
    offers ``for_execution(executor)`` gets a fresh copy per execution; ``executor`` is
    the operation's own (None for the copies made per subscription event)."""
    scoped = getattr(context, "for_execution", None)
    return context if scoped is None else scoped(executor)


def weak_helpers(executor: Any) -> GraphQLResolveInfoHelpers:
    """The helpers graphql-core hands resolvers (``info.async_helpers``), reaching the
    executor weakly. graphql-core's are its bound methods, a cycle (executor, helpers,
    method, executor) that left every finished execution, with its context and what its
    loaders read, to the garbage collector instead of freeing it when it ended."""
    ref = weakref.ref(executor)

    def gather(values: Any) -> Any:
        return ref().gather_async_work(values)  # type: ignore[union-attr]  # alive: running

    def track(values: Any) -> None:
        ref().track_async_work(values)  # type: ignore[union-attr]

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


class FastExecutor(ExecutionContext):
    """Strawberry's executor with a fast path for plain fields (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_helpers(self)
        self.context_value = for_execution(self.context_value, self)
        self._event_key: Any = Undefined
        """A subscription's: the key its events' results are shared under (``sharing``)."""
        self._event_share: tuple[Any, Any] | None = None
        """An event's: its key and payload, when its result may be shared."""
        manager = self.middleware_manager
        self._fast = manager is None or not getattr(manager, "middlewares", None)
        self._plans: dict[int, tuple[Any, Any, list[tuple[Any, ...]]]] = {}
        self._field_kinds = schema_cache(self.schema, "_jobgraph_field_kinds")
        self._fills = schema_cache(self.schema, "_jobgraph_compiled_leaves")
        self._literal_arguments = schema_cache(self.schema, "_jobgraph_literal_arguments")
        self._shared: dict[Any, Any] | None = None
        if self._fast:
            statics = schema_cache(self.schema, "_jobgraph_static_operations")
            operation = self.operation
            known = statics.get(id(operation))
            if known is None or known[0] is not operation:
                if len(statics) >= MAX_SHARED_OPERATIONS:
                    statics.clear()
                document = type("Document", (), {"definitions": [
                    operation, *(details.definition for details in self.fragments.values())]})
                known = statics[id(operation)] = (
                    operation, {} if is_static(document) else None)
            # The same selections every time: they (and their plans) are shared across
            # requests, keyed by the operation's nodes, which this entry keeps alive.
            self._shared = known[1]

    def __copy__(self) -> FastExecutor:
        """graphql-core's copies (an executor per subscription event) with helpers of
        their own: the original's may be gone (a parked group executes with a copy)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.async_helpers = weak_helpers(clone)
        return clone

    def event_key(self) -> Any:
        """The key this subscription's events are shared under; None: not shared."""
        key = self._event_key
        if key is Undefined:
            key = self._event_key = event_key(self)
        return key

    def build_per_event_executor(self, payload: Any) -> FastExecutor:
        executor: FastExecutor = super().build_per_event_executor(payload)  # type: ignore[assignment]
        executor.context_value = for_execution(executor.context_value)
        key = self.event_key()
        executor._event_share = None if key is None else (key, payload)
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        """An event's result, executed once for every subscriber it is shared with
        (``graph/engine/sharing.py``)."""
        share = self._event_share
        if share is None:
            return super().execute_operation(serially)
        key, payload = share
        results = shared_results(self.schema)
        found = results.get(key, payload)
        if found is not None:
            return found
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return self._remember(results, key, payload, result)
        results.put(key, payload, result)
        return result

    async def _remember(self, results: Any, key: Any, payload: Any, result: Any) -> Any:
        result = await result
        results.put(key, payload, result)
        return result

    # -- plans ------------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any
              ) -> tuple[Any, list[tuple[Any, ...]]]:
        """The leaves (as one function, ``compile_leaves``) and the other fields of one
        selection on one type."""
        key = id(grouped_field_set)
        plans = self._plans
        cached = plans.get(key)
        if cached is None and self._shared is not None:
            cached = self._shared.get(key)
            if cached is not None:
                plans[key] = cached
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1], cached[2]
        leaves: list[tuple[Any, ...]] = []
        others: list[tuple[Any, ...]] = []
        kinds = self._field_kinds
        for response_name, field_details_list in grouped_field_set.items():
            first = field_details_list[0]
            field_name = first.node.name.value
            if field_name == "__typename":
                leaves.append((TYPENAME, response_name))
                continue
            if first.node.directives and any(
                    directive.name.value not in ("skip", "include")
                    for details in field_details_list for directive in details.node.directives):
                others.append((GENERIC, response_name, field_details_list))
                continue
            kind = kinds.get((parent_type.name, field_name))
            if kind is None:
                field_def = parent_type.fields.get(field_name)
                kind = ((GENERIC,) if field_def is None
                        else field_kind(parent_type, field_def, self.schema))
                kinds[(parent_type.name, field_name)] = kind
            if kind[0] in (LEAF, LEAF_LIST):
                leaves.append((kind[0], response_name, *kind[1:]))
            elif kind[0] is DIRECT:  # the call as ``call_direct`` makes it
                others.append((DIRECT, response_name, field_details_list, kind))
            else:
                others.append((kind[0], response_name, field_details_list, *kind[1:]))
        fill = compiled_leaves(self._fills, parent_type.name, tuple(grouped_field_set), leaves)
        plans[key] = (grouped_field_set, fill, others)
        if self._shared is not None and self._shared.get(("set", key)) is grouped_field_set:
            self._shared[key] = plans[key]
        return fill, others

    def _subfields(self, object_type: GraphQLObjectType, field_details_list: Any) -> Any:
        shared = self._shared
        if shared is not None:
            key = (object_type.name, *[id(details.node) for details in field_details_list])
            found = shared.get(key)
            if found is not None and all(
                    details.node is node for details, node in zip(field_details_list, found[0],
                                                                    strict=False)):
                return found[1]
        grouped_field_set, new_defer_usages, _forbidden = self.collect_subfields(
            object_type, field_details_list)
        if new_defer_usages:
            return None
        if shared is not None and all(details.defer_usage is None
                                      and details.fragment_variable_values is None
                                      for details in field_details_list):
            shared[key] = ([details.node for details in field_details_list], grouped_field_set)
            shared[("set", id(grouped_field_set))] = grouped_field_set
        return grouped_field_set

    # -- objects ----------------------------------------------------------------

    def execute_fields_serially(self, parent_type: GraphQLObjectType, source_value: Any,
                                path: Path | None, grouped_field_set: Any,
                                position_context: Any) -> Any:
        """Mutations: one root field (the usual case) has no order to keep, so it takes the
        fast path; several run one after another, as graphql-core runs them."""
        if (self._fast and position_context is None and len(grouped_field_set) == 1
                and (self.abort_signal is None or not self.abort_signal.aborted)):
            return self.execute_fields(parent_type, source_value, path, grouped_field_set,
                                       position_context)
        return super().execute_fields_serially(parent_type, source_value, path,
                                               grouped_field_set, position_context)

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any,
                       path: Path | None, grouped_field_set: Any,
                       position_context: Any) -> Any:
        if not self._fast or position_context is not None:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set,
                                          position_context)
        fill, others = self._plan(parent_type, grouped_field_set)
        try:
            results: dict[str, Any] = fill(source_value)
        except Bail:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set,
                                          position_context)
        if not others:
            return results
        return self._execute_others(parent_type, source_value, path, results, others)

    def _execute_others(self, parent_type: GraphQLObjectType, source_value: Any,
                        path: Path | None, results: dict[str, Any],
                        others: list[tuple[Any, ...]]) -> Any:
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        parent_name = parent_type.name
        try:
            for step in others:
                kind, response_name, field_details_list = step[0], step[1], step[2]
                field_path = Path(path, response_name, parent_name)
                result: Any = Undefined
                if kind is OBJECT:
                    result = self._plain_object(step, source_value, field_path)
                elif kind is OBJECT_LIST:
                    result = self._plain_object_list(step, source_value, field_path)
                elif kind is DIRECT:
                    result = self._execute_direct(parent_type, source_value, field_details_list,
                                                  field_path, step)
                if result is Undefined:
                    result = self.execute_field(parent_type, source_value, field_details_list,
                                                field_path, None)
                    if result is Undefined:
                        del results[response_name]
                        continue
                results[response_name] = result
                if type(result) is not dict and result is not None and is_awaitable(result):
                    awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._await_fields(results, awaitable_fields)

    @staticmethod
    async def _await_fields(results: dict[str, Any], awaitable_fields: list[str]
                            ) -> dict[str, Any]:
        if len(awaitable_fields) == 1:
            name = awaitable_fields[0]
            results[name] = await results[name]
        else:
            awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results

    def _execute_direct(self, parent_type: GraphQLObjectType, source: Any,
                        field_details_list: Any, path: Path, step: tuple[Any, ...]) -> Any:
        """``execute_field`` for a resolver called directly (see ``_direct_call``)."""
        direct = step[3]
        field_def = direct[1]
        return_type = field_def.type
        info = self.build_resolve_info(field_def, [details.node for details in
                                                   field_details_list], parent_type, path)
        try:
            raw = self._arguments(field_def, field_details_list[0])
            result = call_direct(direct, source, info, raw)
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, field_details_list, info,
                                                     path, result, None)
            completed = self.complete_value(return_type, field_details_list, info, path,
                                            result, None)
            if type(completed) is not dict and self.is_awaitable(completed):
                return self._await_completed(completed, return_type, field_details_list, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed

    def _arguments(self, field_def: Any, details: Any) -> dict[str, Any]:
        """The field's coerced arguments. Scalar literals (``logs(last: 10)``) are coerced
        once per field of a document this process keeps: the same in every request."""
        node = details.node
        if not (field_def.args or node.arguments):
            return {}
        literal = self._literal_arguments
        found = literal.get(id(node))
        if found is not None and found[0] is node and found[1] is field_def:
            return found[2]  # type: ignore[no-any-return]
        raw: dict[str, Any] = get_argument_values(
            field_def, node, self.variable_values, details.fragment_variable_values,
            self.hide_suggestions)
        if (details.fragment_variable_values is None
                and all(names_no_variable(argument.value) for argument in node.arguments or ())
                and all(value is None or type(value) in SCALARS or isinstance(value, Enum)
                        for value in raw.values())):  # nothing a resolver could change
            if len(literal) >= MAX_LITERAL_ARGUMENTS:
                literal.clear()
            literal[id(node)] = (node, field_def, raw)
        return raw

    def _plain_object(self, step: tuple[Any, ...], source_value: Any, field_path: Path) -> Any:
        """A plain field of an object type; Undefined hands it to graphql-core."""
        _kind, _name, field_details_list, attribute, non_null, object_type = step
        value = getattr(source_value, attribute, Undefined)
        if value is Undefined:
            return Undefined
        if value is None:
            return Undefined if non_null else None
        if not accepts(object_type, value):
            return Undefined
        grouped_field_set = self._subfields(object_type, field_details_list)
        if grouped_field_set is None:
            return Undefined
        return_type = GraphQLNonNull(object_type) if non_null else object_type
        try:
            completed = self.execute_fields(object_type, value, field_path, grouped_field_set,
                                            None)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, field_path)
            return None
        if type(completed) is dict:
            return completed
        return self._await_completed(completed, return_type, field_details_list, field_path)

    async def _await_completed(self, completed: Any, return_type: Any,
                               field_details_list: Any, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None

    def _plain_object_list(self, step: tuple[Any, ...], source_value: Any,
                           field_path: Path) -> Any:
        _kind, _name, field_details_list, attribute, non_null, item_type, item_non_null = step
        items = getattr(source_value, attribute, Undefined)
        if items is Undefined:
            return Undefined
        if items is None:
            return Undefined if non_null else None
        if not isinstance(items, list | tuple) or (item_non_null and None in items):
            return Undefined
        if item_type.is_type_of is not None and not all(
                item is None or accepts(item_type, item) for item in items):
            return Undefined
        grouped_field_set = self._subfields(item_type, field_details_list)
        if grouped_field_set is None:
            return Undefined
        list_type: Any = GraphQLList(GraphQLNonNull(item_type) if item_non_null else item_type)
        return_type = GraphQLNonNull(list_type) if non_null else list_type
        try:
            completed = self._complete_objects(item_type, item_non_null, field_details_list,
                                               field_path, items, grouped_field_set)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, field_path)
            return None
        if type(completed) is list:
            return completed
        return self._await_completed(completed, return_type, field_details_list, field_path)

    def _complete_objects(self, item_type: GraphQLObjectType, item_non_null: bool,
                          field_details_list: Any, path: Path, items: Any,
                          grouped_field_set: Any) -> Any:
        """Each item of a list of objects, with graphql-core's per-item error handling."""
        is_awaitable = self.is_awaitable
        execute_fields = self.execute_fields
        completed: list[Any] = []
        append = completed.append
        awaitable_indices: list[int] = []
        error_type: Any = GraphQLNonNull(item_type) if item_non_null else item_type
        try:
            for index, item in enumerate(items):
                if item is None:
                    append(None)
                    continue
                item_path = path.add_key(index, None)
                try:
                    value = execute_fields(item_type, item, item_path, grouped_field_set, None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, error_type, field_details_list,
                                            item_path)
                    value = None
                if type(value) is not dict and value is not None and is_awaitable(value):
                    value = self._await_completed(value, error_type, field_details_list,
                                                  item_path)
                    awaitable_indices.append(index)
                append(value)
        except Exception:
            if awaitable_indices:
                self.settle_in_background([completed[index] for index in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed
        return self._await_items(completed, awaitable_indices)

    @staticmethod
    async def _await_items(completed: list[Any], awaitable_indices: list[int]) -> list[Any]:
        if len(awaitable_indices) == 1:
            index = awaitable_indices[0]
            completed[index] = await completed[index]
        else:
            awaited = await gather_with_cancel(*(completed[index]
                                                 for index in awaitable_indices))
            for index, value in zip(awaitable_indices, awaited, strict=True):
                completed[index] = value
        return completed

    # -- values returned by resolvers ---------------------------------------------

    def complete_value(self, return_type: Any, field_details_list: Any, info: Any,
                       path: Path, result: Any, position_context: Any) -> Any:
        """Objects and lists of objects from resolvers go to the fast ``execute_fields``."""
        if not self._fast or position_context is not None or isinstance(result, Exception):
            return super().complete_value(return_type, field_details_list, info, path, result,
                                          position_context)
        inner, non_null = unwrap(return_type)
        if result is None or result is Undefined:
            if non_null:
                return super().complete_value(return_type, field_details_list, info, path,
                                              result, position_context)
            return None
        if isinstance(inner, GraphQLObjectType) and accepts(inner, result):
            grouped_field_set = self._subfields(inner, field_details_list)
            if grouped_field_set is not None:
                return self.execute_fields(inner, result, path, grouped_field_set, None)
        elif isinstance(inner, GraphQLList) and isinstance(result, list | tuple):
            item_type, item_non_null = unwrap(inner.of_type)
            if (isinstance(item_type, GraphQLObjectType)
                    and all(item is None or accepts(item_type, item) for item in result)
                    and not (item_non_null and None in result)
                    and self.get_stream_usage(field_details_list, path) is None):
                grouped_field_set = self._subfields(item_type, field_details_list)
                if grouped_field_set is not None:
                    return self._complete_objects(item_type, item_non_null, field_details_list,
                                                  path, result, grouped_field_set)
        return super().complete_value(return_type, field_details_list, info, path, result,
                                      position_context)
