// A stacked area chart on a <canvas>: time on x, a rate on y, one band per
// series. Small on purpose: the console needs one kind of chart, and a
// vendored library would be more code to review than this.
'use strict';

window.EdgeChart = (function () {
  const PAD = { left: 52, right: 12, top: 10, bottom: 24 };
  const GRID = '#d9dde3';
  const TEXT = '#5b6470';

  // A round upper bound for the y axis and its step: 1, 2 or 5 × 10^k.
  function niceScale(max) {
    if (!(max > 0)) return { top: 1, step: 0.25 };
    const raw = max / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    return { top: Math.ceil(max / step) * step, step };
  }

  function formatRate(v) {
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k';
    if (v >= 10 || v === 0) return v.toFixed(0);
    return v.toFixed(v >= 1 ? 1 : 2);
  }

  // Sizes the canvas's backing store to its CSS box, so lines are sharp on
  // any pixel ratio, and returns the 2D context in CSS pixels.
  function fit(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  // draw renders series (each {label, color, values}) stacked in the
  // order given; values[i] is the rate over [start + i×step, +step).
  // It returns the y-axis top, which tests and legends may show.
  function draw(canvas, series, start, step) {
    const { ctx, w, h } = fit(canvas);
    const n = series.length ? series[0].values.length : 0;
    const plotW = w - PAD.left - PAD.right;
    const plotH = h - PAD.top - PAD.bottom;
    const totals = new Array(n).fill(0);
    for (const s of series) s.values.forEach((v, i) => { totals[i] += v; });
    const { top, step: yStep } = niceScale(Math.max(0, ...totals));
    const x = (i) => PAD.left + (n > 1 ? (i / (n - 1)) * plotW : 0);
    const y = (v) => PAD.top + plotH - (v / top) * plotH;

    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    ctx.strokeStyle = GRID;
    ctx.fillStyle = TEXT;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let v = 0; v <= top + yStep / 2; v += yStep) {
      ctx.beginPath();
      ctx.moveTo(PAD.left, Math.round(y(v)) + 0.5);
      ctx.lineTo(w - PAD.right, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(formatRate(v) + '/s', PAD.left - 6, y(v));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const span = n * step;
    const every = span > 600 ? 300 : span > 120 ? 60 : 15;
    for (let s = 0; s < span; s += every) {
      const i = n - 1 - Math.round(s / step);
      const label = s === 0 ? 'now' : s % 60 === 0 ? '−' + s / 60 + ' min' : '−' + s + ' s';
      ctx.fillText(label, x(i), h - PAD.bottom + 6);
    }

    // Bands from the top of the stack down, each filled to the baseline:
    // a lower band then paints over the part of the upper one it owns.
    const cumulative = [];
    let run = new Array(n).fill(0);
    for (const s of series) {
      run = run.map((v, i) => v + s.values[i]);
      cumulative.push(run);
    }
    for (let k = series.length - 1; k >= 0; k--) {
      ctx.beginPath();
      ctx.moveTo(x(0), y(0));
      for (let i = 0; i < n; i++) ctx.lineTo(x(i), y(cumulative[k][i]));
      ctx.lineTo(x(n - 1), y(0));
      ctx.closePath();
      ctx.fillStyle = series[k].color;
      ctx.fill();
    }
    ctx.strokeStyle = '#8a929c';
    ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, plotW, plotH);
    return top;
  }

  return { draw, formatRate };
})();
