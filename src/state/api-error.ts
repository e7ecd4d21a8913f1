/**
 * A refusal in the IoT Data Plane's terms: HTTP status, error code (`x-amzn-ErrorType`, e.g.
 * `ConflictException`) and message. Shadow sources and command stores throw it; the admin API passes it on.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request's clientToken, echoed in the error answer. */
    readonly clientToken?: string,
  ) {
    super(message);
  }
}
