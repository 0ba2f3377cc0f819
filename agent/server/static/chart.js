/* A small accuracy-vs-joules plot on a canvas: axes with ticks, a line and dots.
   No dependencies; drawPlot(canvas, points, options). */
"use strict";

function niceStep(range) {
  const raw = range / 5;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

function drawPlot(canvas, points, opts) {
  const o = Object.assign({xLabel: "joules (J)", yLabel: "accuracy", yMin: 0, yMax: 1}, opts || {});
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const m = {left: 56, right: 16, top: 16, bottom: 44};
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const xMax = points.reduce((a, p) => Math.max(a, p.x), 1e-9) * 1.05;
  const sx = x => m.left + (x / xMax) * (w - m.left - m.right);
  const sy = y => h - m.bottom - ((y - o.yMin) / (o.yMax - o.yMin)) * (h - m.top - m.bottom);
  ctx.strokeStyle = "#888";
  ctx.fillStyle = "#333";
  ctx.font = "12px sans-serif";
  ctx.beginPath();
  ctx.moveTo(m.left, m.top);
  ctx.lineTo(m.left, h - m.bottom);
  ctx.lineTo(w - m.right, h - m.bottom);
  ctx.stroke();
  const xs = niceStep(xMax);
  ctx.textAlign = "center";
  for (let x = 0; x <= xMax + 1e-12; x += xs) {
    ctx.fillText(Number(x.toPrecision(3)).toString(), sx(x), h - m.bottom + 16);
  }
  ctx.textAlign = "right";
  for (let y = o.yMin; y <= o.yMax + 1e-9; y += 0.2) {
    ctx.fillText(y.toFixed(1), m.left - 6, sy(y) + 4);
    ctx.strokeStyle = "#eee";
    ctx.beginPath();
    ctx.moveTo(m.left + 1, sy(y));
    ctx.lineTo(w - m.right, sy(y));
    ctx.stroke();
  }
  ctx.textAlign = "center";
  ctx.fillText(o.xLabel, (w + m.left) / 2, h - 8);
  ctx.save();
  ctx.translate(14, (h - m.bottom + m.top) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(o.yLabel, 0, 0);
  ctx.restore();
  if (points.length) {
    ctx.strokeStyle = "#e63946";
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(sx(p.x), sy(p.y)) : ctx.moveTo(sx(p.x), sy(p.y))));
    ctx.stroke();
    ctx.fillStyle = "#1d3557";
    for (const p of points) {
      ctx.beginPath();
      ctx.arc(sx(p.x), sy(p.y), 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  canvas.dataset.points = String(points.length);
}
