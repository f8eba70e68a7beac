/**
 * The time a server reads: one injected clock, in whole seconds since the Unix epoch, the unit in
 * which DNSSEC (RRSIG inception and expiration, RFC 4034 §3.1.5), TTLs (RFC 2181 §8) and the
 * signed objects of this project (`iat`, `exp`, `nbf`) count. A server takes its clock from its
 * setup (`now` among its components, a fixed clock in tests) and hands that one clock to every
 * part that needs the time; {@link systemClock} is the default, and the only place that reads
 * the system's time. Timers (`setTimeout`, deadlines of a request) count milliseconds and are not
 * clocks.
 *
 * Worked example: at 2026-01-01T00:00:00.750Z, `systemClock()` is 1767225600.
 */

/** Whole seconds since the Unix epoch. */
export type Clock = () => number;

/** The system's time in whole seconds (rounded down): the default {@link Clock}. */
export const systemClock: Clock = () => Math.floor(Date.now() / 1000);
