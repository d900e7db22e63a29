'use strict';
/**
 * A small patch to tfjs-node's addon source, applied before we compile it: string attributes
 * and type attributes may also be lists (`TFE_OpSetAttrStringList`, `TFE_OpSetAttrTypeList`). tfjs-node's binding accepts lists
 * only for int, float and bool attributes, and TensorFlow's fused kernels (`_FusedConv2D`,
 * `_FusedMatMul`: convolution or matrix product, bias and activation in one pass) take their
 * `fused_ops` as a list of strings. Idempotent: a marker comment says it is applied.
 */
const fs = require('fs');
const path = require('path');

/** Bumped whenever the patch changes: part of the addon's cache key. */
const BINDING_PATCH = 1;
const MARKER = '// tfjs-antifragile: string list attributes';

const ORIGINAL = `    case TF_ATTR_STRING: {
      // NOTE: String attribute values do not have to be utf8 encoded strings
      // (could be arbitrary byte sequences).
      std::string str_value;`;

const PATCHED = `    case TF_ATTR_STRING: {
      ${MARKER}
      if (IsArray(env, nstatus, &js_value)) {
        uint32_t length;
        nstatus = napi_get_array_length(env, js_value, &length);
        ENSURE_NAPI_OK(env, nstatus);
        std::vector<std::string> strings(length);
        std::vector<const void *> values(length);
        std::vector<size_t> lengths(length);
        for (uint32_t i = 0; i < length; ++i) {
          napi_value element;
          nstatus = napi_get_element(env, js_value, i, &element);
          ENSURE_NAPI_OK(env, nstatus);
          nstatus = GetStringParam(env, element, strings[i]);
          ENSURE_NAPI_OK(env, nstatus);
        }
        for (uint32_t i = 0; i < length; ++i) {
          values[i] = strings[i].data();
          lengths[i] = strings[i].size();
        }
        TFE_OpSetAttrStringList(tfe_op, attr_name, values.data(), lengths.data(),
                                static_cast<int>(length));
        break;
      }
      // NOTE: String attribute values do not have to be utf8 encoded strings
      // (could be arbitrary byte sequences).
      std::string str_value;`;

const TYPE_ORIGINAL = `    case TF_ATTR_TYPE: {
      TF_DataType tf_data_type;`;

const TYPE_PATCHED = `    case TF_ATTR_TYPE: {
      if (IsArray(env, nstatus, &js_value)) {
        uint32_t length;
        nstatus = napi_get_array_length(env, js_value, &length);
        ENSURE_NAPI_OK(env, nstatus);
        std::vector<TF_DataType> types(length);
        for (uint32_t i = 0; i < length; ++i) {
          napi_value element;
          nstatus = napi_get_element(env, js_value, i, &element);
          ENSURE_NAPI_OK(env, nstatus);
          nstatus = napi_get_value_int32(env, element, reinterpret_cast<int32_t *>(&types[i]));
          ENSURE_NAPI_OK(env, nstatus);
        }
        TFE_OpSetAttrTypeList(tfe_op, attr_name, types.data(), static_cast<int>(length));
        break;
      }
      TF_DataType tf_data_type;`;

/** Patches `binding/tfjs_backend.cc` under `tfjsNodeDir`; throws if the source is not the one expected. */
function patchBinding(tfjsNodeDir) {
  const file = path.join(tfjsNodeDir, 'binding', 'tfjs_backend.cc');
  let source = fs.readFileSync(file, 'utf8');
  if (source.includes(MARKER)) return;
  if (!source.includes(ORIGINAL) || !source.includes(TYPE_ORIGINAL)) {
    throw new Error(`${file} is not the tfjs-node source this patch was written for`);
  }
  if (!source.includes('#include <vector>')) source = `#include <vector>\n${source}`;
  fs.writeFileSync(file, source.replace(ORIGINAL, PATCHED).replace(TYPE_ORIGINAL, TYPE_PATCHED));
}

module.exports = { patchBinding, BINDING_PATCH };
