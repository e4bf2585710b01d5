// IEEE 754 half precision (fp16) conversions: weights stored as F16, and the fp16 storage of the compressed
// branch and of quantisation scales.

let table: Float32Array | undefined;

export function halfBitsToFloat(bits: number): number {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      table[h] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
    }
  }
  return table[bits]!;
}

/** The fp16 nearest to x (round to nearest, ties to even), computed from x's float64 value directly. */
export function floatToHalfBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // rounds to infinity
  if (a < 2 ** -25) return sign; // below half the smallest subnormal (ties to even: 0)
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--; // guard log2 rounding
  if (2 ** (exp + 1) <= a) exp++;
  const e = Math.max(exp, -14); // subnormals share the exponent of the smallest normal
  const quantum = 2 ** (e - 10);
  let m = a / quantum; // exact: division by a power of two
  const floor = Math.floor(m);
  const rest = m - floor;
  m = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  // m counts quanta of 2^(e-10): normals have 1024 <= m <= 2048, subnormals m < 1024.
  if (e === -14 && m < 1024) return sign | m;
  if (m === 2048) { m = 1024; exp = e + 1; } else exp = e;
  if (exp > 15) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | (m - 1024);
}

export function roundToHalf(x: number): number {
  return halfBitsToFloat(floatToHalfBits(x));
}
