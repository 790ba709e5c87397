using CeDsl.Cli;
using CeDsl.Platform;

// Before the first tensor: freed activations stay in the process for the next step.
NativeHeap.KeepFreedMemory();
return Cli.Run(args);
