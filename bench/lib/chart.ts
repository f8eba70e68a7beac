import { formatFigure, goalText, type Unit } from './method.js';
import { runLabel } from './history.js';
import type { TargetDefinition, TargetFigures } from './targets.js';

/**
 * A target's history as an SVG chart, built as text (no dependency): per run, the median of the
 * per-round figures as a dot with the rounds' min–max as a whisker, the CPU ratio as a diamond,
 * and the goal as a dashed line. Accessible: `<title>` and `<desc>` name the target and say each
 * run's figures, so a screen reader gets what the eye gets. Pure.
 */

export const CHART_WIDTH = 720;
export const CHART_HEIGHT = 340;
const MARGIN = { top: 48, right: 24, bottom: 64, left: 72 };
/** Horizontal ticks on the y axis. */
const Y_TICKS = 5;
/** Most dates written under the x axis (the last run's and every k-th before it), so that they never overlap. */
export const MAX_DATE_LABELS = 8;

/** One run's point of a chart. */
export interface ChartPoint {
  /** The run's date (ISO 8601); the x axis shows its day. */
  date: string;
  figures: TargetFigures | undefined;
}

/** Text for XML character data and attribute values (XML 1.0 §2.4, §3.3.3). */
export function escapeXml(text: string): string {
  let out = '';
  for (const c of text) {
    if (c === '&') out += '&amp;';
    else if (c === '<') out += '&lt;';
    else if (c === '>') out += '&gt;';
    else if (c === '"') out += '&quot;';
    else if (c === "'") out += '&apos;';
    else out += c;
  }
  return out;
}

const num = (n: number): string => (Math.round(n * 10) / 10).toString();

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten, at or above `value`. */
function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function figuresText(p: ChartPoint, unit: Unit): string {
  const f = p.figures;
  const day = runLabel(p.date);
  if (f === undefined || f.median === null) return `${day}: not measured.`;
  const spread =
    f.min === null || f.max === null
      ? ''
      : `, rounds ${formatFigure(f.min, unit)} to ${formatFigure(f.max, unit)} over ${f.rounds ?? '?'}`;
  const cpu = f.cpuRatio === null ? '' : `, CPU ratio ${formatFigure(f.cpuRatio, 'ratio')}`;
  const status = f.met === null ? '' : f.met ? ', met' : ', not met';
  return `${day}: median ${formatFigure(f.median, unit)}${spread}${cpu}${status}.`;
}

/** The SVG document of `target`'s chart over `points` (oldest first). */
export function chartSvg(target: TargetDefinition, points: readonly ChartPoint[]): string {
  const unit = target.unit;
  const plotW = CHART_WIDTH - MARGIN.left - MARGIN.right;
  const plotH = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
  const values: number[] = [];
  for (const p of points) {
    const f = p.figures;
    if (f === undefined) continue;
    for (const v of [f.median, f.min, f.max, f.cpuRatio]) if (v !== null) values.push(v);
  }
  if (target.goal !== null) values.push(target.goal.value);
  const top = niceCeiling(Math.max(0, ...values.filter((v) => Number.isFinite(v))) * 1.1);
  const y = (v: number): number => MARGIN.top + plotH - (Math.min(v, top) / top) * plotH;
  // Runs evenly spaced: what matters is their order, and days between runs vary widely.
  const x = (i: number): number =>
    MARGIN.left + (points.length === 1 ? plotW / 2 : (i / (points.length - 1)) * plotW);

  const labelEvery = Math.max(1, Math.ceil(points.length / MAX_DATE_LABELS));
  const title = `${target.title}: history`;
  const desc =
    `${points.length} run${points.length === 1 ? '' : 's'}; goal ${goalText(target.goal, unit)}. ` +
    `Each run: median of the per-round figures (${target.figure}), their min–max, and the CPU ratio where measured. ` +
    points.map((p) => figuresText(p, unit)).join(' ');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}" role="img" aria-labelledby="title desc" font-family="sans-serif" font-size="12">`,
    `<title id="title">${escapeXml(title)}</title>`,
    `<desc id="desc">${escapeXml(desc)}</desc>`,
    `<rect x="0" y="0" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" fill="#ffffff"/>`,
    `<text x="${CHART_WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(target.title)}</text>`,
  ];
  // Y axis: ticks, grid and label.
  for (let i = 0; i <= Y_TICKS; i++) {
    const v = (top * i) / Y_TICKS;
    out.push(
      `<line class="grid" x1="${MARGIN.left}" y1="${num(y(v))}" x2="${MARGIN.left + plotW}" y2="${num(y(v))}" stroke="#e0e0e0"/>`,
      `<text x="${MARGIN.left - 6}" y="${num(y(v) + 4)}" text-anchor="end">${escapeXml(formatFigure(v, unit, true))}</text>`,
    );
  }
  const yLabel = unit === 'ratio' ? 'ratio' : unit === 'ms' ? 'milliseconds' : 'per second';
  out.push(
    `<line class="axis" x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}" stroke="#000000"/>`,
    `<line class="axis" x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="#000000"/>`,
    `<text x="16" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + plotH / 2})">${escapeXml(yLabel)}</text>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${CHART_HEIGHT - 8}" text-anchor="middle">run (date)</text>`,
  );
  if (target.goal !== null) {
    const gy = num(y(target.goal.value));
    out.push(
      `<line class="goal" x1="${MARGIN.left}" y1="${gy}" x2="${MARGIN.left + plotW}" y2="${gy}" stroke="#c62828" stroke-dasharray="6 4"/>`,
      `<text x="${MARGIN.left + plotW - 4}" y="${num(y(target.goal.value) - 5)}" text-anchor="end" fill="#c62828">goal ${escapeXml(goalText(target.goal, unit))}</text>`,
    );
  }
  points.forEach((p, i) => {
    const cx = num(x(i));
    // Counted back from the last run, which always has its date.
    if ((points.length - 1 - i) % labelEvery === 0)
      out.push(
        `<text class="date" x="${cx}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${escapeXml(runLabel(p.date))}</text>`,
      );
    const f = p.figures;
    if (f === undefined || f.median === null) {
      out.push(
        `<text class="absent" x="${cx}" y="${MARGIN.top + plotH - 6}" text-anchor="middle" fill="#757575">not measured</text>`,
      );
      return;
    }
    if (f.min !== null && f.max !== null && f.max > f.min) {
      out.push(
        `<line class="whisker" x1="${cx}" y1="${num(y(f.min))}" x2="${cx}" y2="${num(y(f.max))}" stroke="#1565c0" stroke-width="2"/>`,
        `<line class="whisker-cap" x1="${num(x(i) - 5)}" y1="${num(y(f.min))}" x2="${num(x(i) + 5)}" y2="${num(y(f.min))}" stroke="#1565c0" stroke-width="2"/>`,
        `<line class="whisker-cap" x1="${num(x(i) - 5)}" y1="${num(y(f.max))}" x2="${num(x(i) + 5)}" y2="${num(y(f.max))}" stroke="#1565c0" stroke-width="2"/>`,
      );
    }
    out.push(
      `<circle class="median" cx="${cx}" cy="${num(y(f.median))}" r="5" fill="${f.met === false ? '#ffffff' : '#1565c0'}" stroke="#1565c0" stroke-width="2"><title>${escapeXml(figuresText(p, unit))}</title></circle>`,
    );
    if (f.cpuRatio !== null) {
      const cy = y(f.cpuRatio);
      out.push(
        `<path class="cpu" d="M ${cx} ${num(cy - 6)} L ${num(x(i) + 6)} ${num(cy)} L ${cx} ${num(cy + 6)} L ${num(x(i) - 6)} ${num(cy)} Z" fill="#ef6c00"><title>${escapeXml(`CPU ratio ${formatFigure(f.cpuRatio, 'ratio')}`)}</title></path>`,
      );
    }
  });
  // Legend, above the plot.
  const lx = MARGIN.left;
  const ly = 38;
  out.push(
    `<circle cx="${lx + 6}" cy="${ly - 4}" r="5" fill="#1565c0"/>`,
    `<text x="${lx + 16}" y="${ly}">median (hollow: not met), whisker min–max of the rounds</text>`,
    ...(target.cpuMeasured
      ? [
          `<path d="M ${lx + 386} ${ly - 10} L ${lx + 392} ${ly - 4} L ${lx + 386} ${ly + 2} L ${lx + 380} ${ly - 4} Z" fill="#ef6c00"/>`,
          `<text x="${lx + 398}" y="${ly}">CPU ratio</text>`,
        ]
      : []),
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
