// Why PRECISION=bf16 is refused, in terms of this machine's CPU. bf16 pays only where the CPU multiplies bf16
// itself (AVX512-BF16, or AMX on Intel's Sapphire Rapids and later); elsewhere oneDNN emulates it in fp32
// arithmetic plus conversions. `npm run bench:bf16` measured the default model's parts on an AVX2 AMD EPYC
// (LibTorch 2.15, 2 threads): 19x (text encoder, autocast) to 36-123x (head) slower than fp32. It has not been
// measured on a CPU that has the instructions, so the service does not offer it anywhere yet.
import { readFileSync } from 'node:fs';

const BF16_FLAGS = ['avx512_bf16', 'amx_bf16'] as const;

/** The CPU's model name and the bf16 instructions its flags list, from /proc/cpuinfo's text. */
export function bf16Instructions(cpuinfo: string): { cpu: string; flags: string[] } {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'this CPU';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  return { cpu, flags: BF16_FLAGS.filter((f) => flags.has(f)) };
}

/** The message of PRECISION=bf16's refusal, for the CPU /proc/cpuinfo describes (read when not given). */
export function bf16Refusal(cpuinfo?: string): string {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const { cpu, flags } = bf16Instructions(text);
  if (flags.length === 0) {
    return (
      `PRECISION=bf16 is not offered: ${cpu} has no bf16 instructions (avx512_bf16 or amx_bf16), so bf16 would be emulated and ` +
      'slower than fp32 (npm run bench:bf16 measures it); use int8 or fp32'
    );
  }
  return (
    `PRECISION=bf16 is not offered yet: ${cpu} has ${flags.join(' and ')}, but bf16 has not been measured against int8 on such a CPU ` +
    '(npm run bench:bf16 measures it on this one); use int8 or fp32'
  );
}
