// Starts `paved lsp` for YAML and JSON files and restarts it when its settings change.
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";

let client: LanguageClient | undefined;

function serverOptions(): ServerOptions {
  const config = vscode.workspace.getConfiguration("paved");
  const command = config.get<string>("path") || "paved";
  const profile = config.get<string>("profile");
  const args = profile ? ["lsp", "--profile", profile] : ["lsp"];
  return { command, args };
}

async function start(): Promise<void> {
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "yaml" },
      { scheme: "file", language: "json" },
    ],
    synchronize: {
      // paved rereads .paved.yaml when the editor reports it changed.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/.paved.yaml"),
    },
  };
  client = new LanguageClient("paved", "paved", serverOptions(), clientOptions);
  await client.start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration("paved")) {
        await client?.stop();
        await start();
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
