/** Base class of the errors the dataset loaders throw. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The dataset's files are not where the loader looked. The message names the folder, the
 * missing files, where to put them and where to get them: nothing is downloaded at run time.
 */
export class DatasetNotFoundError extends DatasetError {
  constructor(
    message: string,
    /** The paths that were looked for and not found. */
    readonly missing: string[],
  ) {
    super(message);
  }
}

/** A dataset file is truncated, corrupt or holds a value outside the allowed range. */
export class DatasetFormatError extends DatasetError {
  constructor(
    /** The offending file. */
    readonly file: string,
    /** What is wrong with it. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A loader option is invalid; the message names the option, the value and what is allowed. */
export class DatasetOptionsError extends DatasetError {}
