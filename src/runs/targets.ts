/**
 * @module
 * Where deployments go: the targets (environments) a server deploys to, each with its command and the
 * parameters a person fills in when starting one. They come from `--config` (see `target_config.ts`); without
 * it, the one target {@linkcode DEFAULT_TARGET} runs `--command` (or the built-in simulation) with no parameters.
 */

import { DEFAULT_TARGET } from "../logs/deployment.ts";

/** Parameter names: what `SHIPLOG_PARAM_<NAME>` can hold, and a form field can be named after. */
export const PARAM_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** The longest deploy command, in bytes of UTF-8 (`--command`, or a target's in `--config`). */
export const MAX_COMMAND_BYTES = 8192;

/** One parameter of a target, as the config describes it. */
export interface ParamSpec {
  /** What to fill in, for the form; `null` when the config says nothing. */
  description: string | null;
  /** The value used when none is given; `null`: none. */
  default: string | null;
  /** True when a value must be given (or a default exist). */
  required: boolean;
  /** The only values allowed, in the order to offer them; `null`: any value (within `pattern`). */
  choices: readonly string[] | null;
  /** The pattern a value must match, as written in the config; `null`: none. */
  pattern: string | null;
}

/** A place to deploy to. */
export interface Target {
  /** Its name: a key of the config's `targets`, or {@linkcode DEFAULT_TARGET}. */
  name: string;
  /** One line for people, or `null`. */
  description: string | null;
  /** The command for `sh -c`; `null` runs the built-in simulation. */
  command: string | null;
  /** The folder the command runs in (a config's own folder); `null`: shiplog's working directory. */
  cwd: string | null;
  /** Its parameters by name, in the config's order (the first is the one a card shows: the version, say). */
  params: ReadonlyMap<string, ParamSpec>;
}

/** The targets of a server, in the config's order. */
export class Targets {
  #byName: ReadonlyMap<string, Target>;

  constructor(targets: readonly Target[]) {
    if (targets.length === 0) throw new RangeError("Cannot deploy anywhere: no target is configured");
    this.#byName = new Map(targets.map((target) => [target.name, target]));
  }

  /** The one target of a server without `--config`: `command` (`undefined`: the simulation), no parameters. */
  static single(command: string | undefined): Targets {
    return new Targets([{
      name: DEFAULT_TARGET,
      description: null,
      command: command ?? null,
      cwd: null,
      params: new Map(),
    }]);
  }

  /** Every target, in the config's order. */
  list(): Target[] {
    return [...this.#byName.values()];
  }

  get(name: string): Target | undefined {
    return this.#byName.get(name);
  }

  /** The only target, when there is one: a Start that names none goes there. */
  get only(): Target | undefined {
    return this.#byName.size === 1 ? this.#byName.values().next().value : undefined;
  }
}
