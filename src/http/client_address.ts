/**
 * @module
 * Which address a request comes from, for the throttle of wrong tokens and the caps per client. It is the TCP
 * peer, and `X-Forwarded-For` is ignored (anyone can send one), unless the peer is a trusted proxy
 * (`--trusted-proxy`). Then the header is read from the right, the end the proxies write to: each trusted hop
 * is skipped and the first address that is not trusted is the client. What lies left of it was sent by the
 * client itself and is not believed; a malformed entry ends the walk at the last trusted hop.
 */

import { BlockList, isIP } from "node:net";

/** The networks whose requests may name their client in `X-Forwarded-For`. */
export class TrustedProxies {
  #networks = new BlockList();
  #empty: boolean;

  private constructor(cidrs: readonly string[], source: string) {
    this.#empty = cidrs.length === 0;
    for (const cidr of cidrs) {
      const { address, prefix, family } = parseCidr(cidr, source);
      this.#networks.addSubnet(address, prefix, family);
    }
  }

  /**
   * The networks of `cidrs` (`10.0.0.0/8`, `fd00::/8`, or one address); throws a `RangeError` naming
   * `source` and the entry for one that is not an IPv4 or IPv6 network.
   */
  static parse(cidrs: readonly string[], source = "--trusted-proxy"): TrustedProxies {
    return new TrustedProxies(cidrs, source);
  }

  /** True when `address` (as {@linkcode normalAddress} gives it) is inside a trusted network. */
  includes(address: string): boolean {
    const family = isIP(address);
    return !this.#empty && family !== 0 && this.#networks.check(address, family === 4 ? "ipv4" : "ipv6");
  }

  /** The client of a request from `peer` that carried `forwardedFor` (the `X-Forwarded-For` header, or null). */
  clientAddress(peer: string, forwardedFor: string | null): string {
    let client = normalAddress(peer) ?? peer;
    if (forwardedFor === null || !this.includes(client)) return client;
    const hops = forwardedFor.split(",");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalAddress(hops[i]);
      if (hop === undefined) return client;
      client = hop;
      if (!this.includes(hop)) return hop;
    }
    // Every hop is a proxy of ours: the first one is as near to the client as we can know.
    return client;
  }
}

/**
 * One address in its plain form: IPv4 dotted, IPv6 lowercase, an IPv4-mapped IPv6 address as IPv4 (a
 * dual-stack socket reports IPv4 peers so), without brackets or a port (`[::1]:80`, `10.0.0.1:80`, as some
 * proxies write them). `undefined` when `text` is not an address (a name, `unknown`, a zone index).
 */
export function normalAddress(text: string): string | undefined {
  let address = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address);
  if (bracketed) address = bracketed[1];
  else if (/^[\d.]+:\d{1,5}$/.test(address)) address = address.slice(0, address.indexOf(":"));
  address = address.toLowerCase();
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6 || address.includes("%")) return undefined;
  const mapped = /^(?:::|(?:0{1,4}:){5})ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  return mapped ? mapped[1] : address;
}

/** A network as `BlockList.addSubnet` takes it. */
interface Network {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

function parseCidr(cidr: string, source: string): Network {
  const [address, prefixText, ...rest] = cidr.trim().split("/");
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (family === 0 || address.includes("%") || rest.length > 0 || !(prefix <= max)) {
    throw new RangeError(
      `Cannot parse ${source} "${cidr}": expected an IPv4 or IPv6 address with an optional prefix length, ` +
        "like 10.0.0.0/8, 192.168.1.10 or fd00::/8",
    );
  }
  return { address, prefix, family: family === 4 ? "ipv4" : "ipv6" };
}
