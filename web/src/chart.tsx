import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  values: number[];
  color: string;
  /** Drawn against the right-hand axis. */
  right?: boolean;
  /** How its axis labels its values (uPlot's default rounds small ones, such as cents, to 0). */
  format?: (value: number) => string;
}

function axis(scale: string, owner: ChartSeries | undefined): uPlot.Axis {
  const format = owner?.format;
  return format === undefined ? { scale } : { scale, values: (_plot, splits) => splits.map(format), size: 72 };
}

/** A uPlot time chart of one or two scales (left and right axes), as wide as its box; `x` in Unix seconds. */
export function Chart({ x, series, height = 220 }: { x: number[]; series: ChartSeries[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(240, element.clientWidth),
      height,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, fill: `${s.color}22`, width: 2, scale: s.right ? 'right' : 'y', points: { show: x.length <= 48 } }))],
      axes: [{}, axis('y', series.find((s) => !s.right)), ...(series.some((s) => s.right) ? [{ ...axis('right', series.find((s) => s.right)), side: 1, grid: { show: false } }] : [])],
      scales: { x: { time: true } },
    };
    const plot = new uPlot(options, [x, ...series.map((s) => s.values)], element);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, element.clientWidth), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [x, series, height]);
  return <div class="chart" ref={box} />;
}
