import { readFileSync } from 'node:fs';

/**
 * Memory of a worker child process, read from /proc/<pid>/status (Linux): VmRSS sampled every
 * 100 ms, and VmHWM, the kernel's own peak RSS of the process.
 */
export interface MemoryFigures {
  /** Highest VmRSS seen by the 100 ms sampler, bytes. */
  peakRssSampledBytes: number;
  /** VmHWM at the end of the drain: the kernel's peak RSS, bytes. */
  peakRssHwmBytes: number;
  /** VmRSS when the drain completed, bytes. */
  endRssBytes: number;
  samples: number;
  /** Peak V8 heap figures, sampled every 100 ms inside the worker process. */
  heap?: { heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; arrayBuffersBytes: number };
}

export function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export class RssSampler {
  private peakKb = 0;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, intervalMs = 100) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const kb = readStatusKb(this.pid, 'VmRSS');
    if (kb > 0) {
      this.peakKb = Math.max(this.peakKb, kb);
      this.samples++;
    }
  }

  /** Stops sampling and returns the figures; call while the process still runs (VmHWM needs it). */
  finish(): Omit<MemoryFigures, 'heap'> {
    this.sample();
    clearInterval(this.timer);
    return {
      peakRssSampledBytes: this.peakKb * 1024,
      peakRssHwmBytes: readStatusKb(this.pid, 'VmHWM') * 1024,
      endRssBytes: readStatusKb(this.pid, 'VmRSS') * 1024,
      samples: this.samples,
    };
  }
}

/** "Flat" = the 10x backlog's peak RSS is within `tolerance` of the base backlog's peak RSS. */
export function rssFlat(base: MemoryFigures, tenX: MemoryFigures, tolerance = 0.2) {
  const ratio = tenX.peakRssHwmBytes / Math.max(1, base.peakRssHwmBytes);
  return { ratio: Math.round(ratio * 1000) / 1000, tolerance, flat: ratio <= 1 + tolerance };
}
