// The table every bench ends with: measurement | tsrun | runc | ratio | target | met?
// rows: { name, tsrun, runc, target (null: no target), per? (divide by it for a "per container" line) }.
export function printRatioTable(rows, { width = 44, unit = 'ms', digits = 1 } = {}) {
  const cell = (v, w) => String(v).padStart(w);
  console.log('\n' + 'measurement'.padEnd(width) + ' | ' + cell(`tsrun ${unit}`, 9) + ' | ' + cell(`runc ${unit}`, 9) + ' | ' + cell('ratio', 6) + ' | ' + cell('target', 6) + ' | met?');
  console.log('-'.repeat(width) + '-+-' + '-'.repeat(9) + '-+-' + '-'.repeat(9) + '-+-' + '-'.repeat(6) + '-+-' + '-'.repeat(6) + '-+-----');
  for (const r of rows) {
    const ratio = r.tsrun / r.runc;
    const met = r.target == null ? '' : ratio <= r.target ? 'yes' : 'NO';
    console.log(r.name.padEnd(width) + ' | ' + cell(r.tsrun.toFixed(digits), 9) + ' | ' + cell(r.runc.toFixed(digits), 9) + ' | ' + cell(`${ratio.toFixed(2)}×`, 6) + ' | ' + cell(r.target == null ? '—' : `${r.target}×`, 6) + ' | ' + met);
    if (r.per) console.log('  per container'.padEnd(width) + ' | ' + cell((r.tsrun / r.per).toFixed(2), 9) + ' | ' + cell((r.runc / r.per).toFixed(2), 9) + ' |        |        |');
  }
}
