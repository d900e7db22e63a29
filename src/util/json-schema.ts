/**
 * TypeScript types derived from JSON schemas written `as const`, so that a schema is the one
 * place where option names, types and defaults are written. Covers the subset of draft-07 this
 * project uses: `type` (number, integer, string, boolean, array, object), `enum`, `anyOf`,
 * `items`, `properties` and `required`; an array with `minItems` = `maxItems` = 2 is a pair.
 */

/** The value type a schema describes. */
export type FromSchema<S> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { anyOf: readonly (infer A)[] }
    ? FromSchema<A>
    : S extends { type: 'number' | 'integer' }
      ? number
      : S extends { type: 'string' }
        ? string
        : S extends { type: 'boolean' }
          ? boolean
          : S extends { type: 'array'; items: infer I; minItems: 2; maxItems: 2 }
            ? [FromSchema<I>, FromSchema<I>]
            : S extends { type: 'array'; items: infer I }
              ? Array<FromSchema<I>>
              : S extends { type: 'object'; properties: infer P }
                ? ObjectFromSchema<P, RequiredKeys<S>>
                : unknown;

/** The names an object schema lists as `required`. */
export type RequiredKeys<S> = S extends { required: readonly (infer R)[] } ? R : never;

type Flatten<T> = { -readonly [K in keyof T]: T[K] };

/** The object type of `properties` `P` with the `required` names `R`; the others optional. */
export type ObjectFromSchema<P, R> = Flatten<
  { [K in keyof P as K extends R ? K : never]: FromSchema<P[K]> } & {
    [K in keyof P as K extends R ? never : K]?: FromSchema<P[K]>;
  }
>;

type HasDefault<S> = S extends { default: unknown } ? true : false;

/**
 * The object after defaults are filled in (as ajv's `useDefaults` does): the required
 * properties and those with a `default` are present, the others optional.
 */
export type WithDefaults<P, R> = Flatten<
  {
    [K in keyof P as K extends R ? K : HasDefault<P[K]> extends true ? K : never]: FromSchema<P[K]>;
  } & {
    [K in keyof P as K extends R ? never : HasDefault<P[K]> extends true ? never : K]?: FromSchema<
      P[K]
    >;
  }
>;
