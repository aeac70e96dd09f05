// Can Evidence's DuckDB-WASM (the engine `evidence sources` uses to write Parquet and the browser uses to read it)
// write and read Parquet without the network? Exit 0 if it can, 3 if it cannot. Run with a timeout: when the
// parquet extension is not built in, DuckDB-WASM tries to fetch it from extensions.duckdb.org and, offline, hangs.
import { createDuckDB, NODE_RUNTIME, VoidLogger } from '@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs';
import { createRequire } from 'module';
import { dirname, resolve, join } from 'path';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';

const require = createRequire(import.meta.url);
const dist = dirname(require.resolve('@duckdb/duckdb-wasm'));
const version = JSON.parse(readFileSync(resolve(dist, '..', 'package.json'), 'utf8')).version;
const db = await createDuckDB(
	{
		mvp: { mainModule: resolve(dist, './duckdb-mvp.wasm'), mainWorker: resolve(dist, './duckdb-node-mvp.worker.cjs') },
		eh: { mainModule: resolve(dist, './duckdb-eh.wasm'), mainWorker: resolve(dist, './duckdb-node-eh.worker.cjs') }
	},
	new VoidLogger(),
	NODE_RUNTIME
);
await db.instantiate();
db.open({});
const con = db.connect();
const parquet = con
	.query("select install_mode from duckdb_extensions() where extension_name = 'parquet'")
	.toArray()
	.map((r) => r.toJSON().install_mode)[0];
if (parquet !== 'STATICALLY_LINKED') {
	console.log(`@duckdb/duckdb-wasm ${version}: parquet is not built in (install_mode ${parquet}); it would be fetched from extensions.duckdb.org`);
	process.exit(3);
}
const dir = mkdtempSync(join(tmpdir(), 'evidence-parquet-'));
con.query(`copy (select 1 as x) to '${join(dir, 'x.parquet')}' (format parquet)`);
rmSync(dir, { recursive: true, force: true });
console.log(`@duckdb/duckdb-wasm ${version}: parquet built in`);
