/**
 * HPACK (RFC 7541), as much as a gRPC client needs: requests are encoded as
 * literals without indexing (no Huffman, no dynamic table), and responses are
 * decoded completely (static and dynamic tables, Huffman strings, table size
 * updates).
 *
 * @module
 */

/** The static table (RFC 7541, Appendix A); index 1 is the first entry. */
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * The Huffman code lengths of symbols 0-255 and EOS (RFC 7541, Appendix B),
 * one character each (`"0"` + length). The code is canonical: codes are
 * assigned in order of (length, symbol), so the lengths define it.
 */
const LENGTHS = "=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=6777777" +
  "7777777777777777878=C=>6?56565666577666567655677777?;>=LDFDDFFFGFGGGGGHG" +
  "HHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKKJHICEJKKJKH" +
  "EEJJLKKKDHDEFEEGFFIIHHJGJKJJKKKKKLKKKKKJN";

interface Node {
  next: [Node | undefined, Node | undefined];
  symbol?: number;
}

/** The decoding tree of the canonical code. */
const TREE: Node = (() => {
  const lengths = [...LENGTHS].map((c) => c.charCodeAt(0) - 48);
  if (lengths.length !== 257) throw new Error(`hpack: ${lengths.length} code lengths`);
  const order = lengths.map((len, symbol) => ({ len, symbol }))
    .sort((a, b) => a.len - b.len || a.symbol - b.symbol);
  const root: Node = { next: [undefined, undefined] };
  let code = 0;
  let prevLen = order[0].len;
  for (const { len, symbol } of order) {
    code <<= len - prevLen;
    prevLen = len;
    let node = root;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = (code >>> bit) & 1;
      node = node.next[b] ??= { next: [undefined, undefined] };
    }
    node.symbol = symbol;
    code++;
  }
  return root;
})();

/** Decodes a Huffman-coded string (RFC 7541, 5.2); padding must be the EOS prefix (all ones). */
export function huffmanDecode(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let node = TREE;
  let depth = 0; // bits since the last symbol
  let ones = true; // those bits are all ones (valid padding)
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const next = node.next[b];
      if (!next) throw new Error("hpack: invalid Huffman code");
      depth++;
      ones &&= b === 1;
      if (next.symbol !== undefined) {
        if (next.symbol === 256) throw new Error("hpack: EOS inside a Huffman string");
        out.push(next.symbol);
        node = TREE;
        depth = 0;
        ones = true;
      } else node = next;
    }
  }
  if (depth > 7 || !ones) throw new Error("hpack: invalid Huffman padding");
  return Uint8Array.from(out);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Appends an HPACK integer with an `n`-bit prefix whose other bits are `flags`. */
function pushInt(out: number[], value: number, n: number, flags: number): void {
  const max = (1 << n) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function pushString(out: number[], text: string): void {
  const bytes = encoder.encode(text);
  pushInt(out, bytes.length, 7, 0);
  for (const b of bytes) out.push(b);
}

/** Encodes headers as literals without indexing (names in lower case). */
export function encodeHeaders(headers: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    out.push(0x00);
    pushString(out, name);
    pushString(out, value);
  }
  return Uint8Array.from(out);
}

/** A decoder: its dynamic table lives as long as the connection. */
export class HpackDecoder {
  #dynamic: [string, string][] = [];
  #size = 0;
  #maxSize = 4096;

  #entry(index: number): readonly [string, string] {
    if (index >= 1 && index <= STATIC.length) return STATIC[index - 1];
    const entry = this.#dynamic[index - STATIC.length - 1];
    if (!entry) throw new Error(`hpack: no table entry ${index}`);
    return entry;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.#dynamic.unshift([name, value]);
    this.#size += size;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#maxSize && this.#dynamic.length > 0) {
      const [n, v] = this.#dynamic.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }

  /** Decodes one complete header block. */
  decode(block: Uint8Array): [string, string][] {
    const out: [string, string][] = [];
    let at = 0;
    const int = (n: number): number => {
      if (at >= block.length) throw new Error("hpack: truncated integer");
      const max = (1 << n) - 1;
      let value = block[at++] & max;
      if (value < max) return value;
      let shift = 1;
      while (true) {
        if (at >= block.length) throw new Error("hpack: truncated integer");
        const b = block[at++];
        value += (b & 0x7f) * shift;
        if ((b & 0x80) === 0) return value;
        shift *= 128;
        if (shift > 2 ** 28) throw new Error("hpack: integer too large");
      }
    };
    const str = (): string => {
      if (at >= block.length) throw new Error("hpack: truncated string");
      const huffman = (block[at] & 0x80) !== 0;
      const len = int(7);
      if (at + len > block.length) throw new Error("hpack: truncated string");
      const raw = block.subarray(at, at + len);
      at += len;
      return decoder.decode(huffman ? huffmanDecode(raw) : raw);
    };
    while (at < block.length) {
      const first = block[at];
      if (first & 0x80) { // indexed field
        const [name, value] = this.#entry(int(7));
        out.push([name, value]);
      } else if (first & 0x40) { // literal with incremental indexing
        const index = int(6);
        const name = index === 0 ? str() : this.#entry(index)[0];
        const value = str();
        this.#add(name, value);
        out.push([name, value]);
      } else if (first & 0x20) { // dynamic table size update
        this.#maxSize = int(5);
        this.#evict();
      } else { // literal without indexing (0x00) or never indexed (0x10)
        const index = int(4);
        const name = index === 0 ? str() : this.#entry(index)[0];
        out.push([name, str()]);
      }
    }
    return out;
  }
}
