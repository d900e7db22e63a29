'use strict';
/**
 * Jest gives each test file its own global object, so typed arrays made by the native
 * backend (outside that realm) fail tfjs' `instanceof Float32Array` checks. Sharing the
 * outer realm's typed-array constructors fixes it.
 */
const { TestEnvironment } = require('jest-environment-node');

class SharedTypedArrayEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of [
      'ArrayBuffer',
      'Uint8Array',
      'Uint8ClampedArray',
      'Int8Array',
      'Uint16Array',
      'Int16Array',
      'Uint32Array',
      'Int32Array',
      'Float32Array',
      'Float64Array',
      'BigInt64Array',
      'BigUint64Array',
      'DataView',
    ]) {
      this.global[name] = globalThis[name];
    }
  }
}

module.exports = SharedTypedArrayEnvironment;
