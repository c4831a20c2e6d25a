// Screenshots against committed baselines: decoded and compared pixel by pixel in the browser itself
// (no image library), with a per-channel tolerance for anti-aliasing and a budget of differing pixels.
import type { Browser } from 'playwright-core';
import { KEEP_NAMES } from './e2e-page.ts';

export interface PixelDiff {
  readonly size: string;
  readonly baselineSize: string;
  /** Pixels where some channel differs by more than the channel tolerance. */
  readonly differing: number;
  readonly total: number;
}

/** Compares two PNGs in a blank page of `browser`. */
export async function diffPngs(browser: Browser, actual: Buffer, baseline: Buffer, channelTolerance: number): Promise<PixelDiff> {
  const page = await browser.newPage();
  await page.addInitScript(KEEP_NAMES);
  await page.goto('about:blank');
  try {
    return await page.evaluate(
      async ({ a, b, tolerance }) => {
        const decode = async (base64: string) => {
          const bitmap = await createImageBitmap(await (await fetch(`data:image/png;base64,${base64}`)).blob());
          const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
          const context = canvas.getContext('2d')!;
          context.drawImage(bitmap, 0, 0);
          return { width: bitmap.width, height: bitmap.height, data: context.getImageData(0, 0, bitmap.width, bitmap.height).data };
        };
        const [x, y] = [await decode(a), await decode(b)];
        const size = `${x.width}x${x.height}`;
        const baselineSize = `${y.width}x${y.height}`;
        if (size !== baselineSize) return { size, baselineSize, differing: x.width * x.height, total: x.width * x.height };
        let differing = 0;
        for (let i = 0; i < x.data.length; i += 4) {
          if (Math.abs(x.data[i] - y.data[i]) > tolerance || Math.abs(x.data[i + 1] - y.data[i + 1]) > tolerance || Math.abs(x.data[i + 2] - y.data[i + 2]) > tolerance) differing++;
        }
        return { size, baselineSize, differing, total: x.width * x.height };
      },
      { a: actual.toString('base64'), b: baseline.toString('base64'), tolerance: channelTolerance },
    );
  } finally {
    await page.close();
  }
}
