// The fields of the pinned SDK's types (node_modules/stripe/types), for checking the emulator's objects.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The fields of `Stripe.<name>` in node_modules/stripe/types: all of them, and those not optional. */
export function sdkFields(names: string[]): Record<string, { all: Set<string>; required: Set<string> }> {
  const file = join(fileURLToPath(new URL("../..", import.meta.url)), `.sdk-fields-${process.pid}.ts`);
  writeFileSync(file, `import Stripe from "stripe";\n${names.map((n, i) => `export type T${i} = Stripe.${n};`).join("\n")}\n`);
  try {
    const program = ts.createProgram([file], { strict: true, noEmit: true, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, skipLibCheck: true });
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(file)!;
    const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(source)!);
    return Object.fromEntries(
      names.map((n, i) => {
        const type = checker.getDeclaredTypeOfSymbol(exports.find((e) => e.name === `T${i}`)!);
        const props = type.getProperties();
        return [n, { all: new Set(props.map((p) => p.name)), required: new Set(props.filter((p) => !(p.flags & ts.SymbolFlags.Optional)).map((p) => p.name)) }];
      }),
    );
  } finally {
    rmSync(file, { force: true });
  }
}

