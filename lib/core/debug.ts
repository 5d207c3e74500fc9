import { argTypeError } from './errors';

/**
 * How much a communicator checks beyond what the engine does, like
 * TORCH_DISTRIBUTED_DEBUG: 'off' (the default) or 'detail', in which every
 * collective is preceded by an all-gather of a 40-byte fingerprint (sequence
 * number, operation, dtype, count, root, reduce op) and ranks that called
 * different collectives all reject with MISMATCH, naming each rank's call.
 */
export type DebugMode = 'off' | 'detail';

const MODES: readonly string[] = ['off', 'detail'];

/** The mode from the option, else from COLLECTIVES_DEBUG (case-insensitive), else 'off'. */
export function debugMode(option: unknown): DebugMode {
  if (option !== undefined) {
    if (typeof option !== 'string' || !MODES.includes(option)) throw argTypeError('options.debug', "'off' or 'detail'", option);
    return option as DebugMode;
  }
  const v = process.env.COLLECTIVES_DEBUG;
  if (v === undefined || v === '') return 'off';
  const mode = v.toLowerCase();
  if (!MODES.includes(mode)) throw argTypeError('COLLECTIVES_DEBUG', "'off' or 'detail'", v);
  return mode as DebugMode;
}

/**
 * Whether calls keep their JavaScript stack: the option, else COLLECTIVES_CALL_SITES ('1' /
 * 'true' or '0' / 'false'), else only in detail mode.
 */
export function callSitesOption(option: unknown, debug: DebugMode): boolean {
  if (option !== undefined) {
    if (typeof option !== 'boolean') throw argTypeError('options.callSites', 'a boolean', option);
    return option;
  }
  const v = process.env.COLLECTIVES_CALL_SITES;
  if (v === undefined || v === '') return debug === 'detail';
  const t = v.toLowerCase();
  if (t === '1' || t === 'true') return true;
  if (t === '0' || t === 'false') return false;
  throw argTypeError('COLLECTIVES_CALL_SITES', "'1', 'true', '0' or 'false'", v);
}
