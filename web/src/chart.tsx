import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  values: number[];
  color: string;
  /** Drawn against the right-hand axis. */
  right?: boolean;
}

/** A uPlot time chart of one or two series (left and right axes), as wide as its box. */
export function Chart({ days, series, height = 220 }: { days: string[]; series: ChartSeries[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const x = days.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);
    const options: uPlot.Options = {
      width: Math.max(240, element.clientWidth),
      height,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, fill: `${s.color}22`, width: 2, scale: s.right ? 'right' : 'y', points: { show: true } }))],
      axes: [{}, { scale: 'y' }, ...(series.some((s) => s.right) ? [{ scale: 'right', side: 1 }] : [])],
      scales: { x: { time: true } },
    };
    const plot = new uPlot(options, [x, ...series.map((s) => s.values)], element);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, element.clientWidth), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [days, series, height]);
  return <div class="chart" ref={box} />;
}
