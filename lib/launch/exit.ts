/** Ending a CLI process without cutting off what it printed last. */

/** Sets the exit code and exits once stdout and stderr have drained. */
export function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.destroyed) done();
    else stream.write('', done);
  }
}
