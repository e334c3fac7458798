// What every deploy test script reads from its command line: --root <repo> and --tools <dir
// with node_modules> (tools/install-deploy-tools.sh fills it), and the npm packages there.
//
//   const {root, toolsRequire} = testOptions('validate_compose.mjs', ['yaml', 'ajv/dist/2019']);

import path from 'node:path';
import {createRequire} from 'node:module';

export function testOptions(script, packages) {
  const option = (name) => {
    const i = process.argv.indexOf(name);
    if (i < 0 || i + 1 >= process.argv.length) {
      console.error(`usage: ${script} --root <repo> --tools <dir>; ${name} missing`);
      process.exit(2);
    }
    return path.resolve(process.argv[i + 1]);
  };
  const root = option('--root');
  const tools = option('--tools');
  const toolsRequire = createRequire(path.join(tools, 'package.json'));
  try {
    for (const p of packages) toolsRequire(p);
  } catch (e) {
    console.error(`the npm packages are not in ${tools}/node_modules (${e.code || e.message}): ` +
                  'run bash tools/install-deploy-tools.sh (tools/test.sh does)');
    process.exit(1);
  }
  return {root, tools, toolsRequire};
}
