// MSBuild task (compiled by RoslynCodeTaskFactory): TorchSharp 0.107's libLibTorchSharp.so
// requires GLIBCXX_3.4.32 (GCC 13) for one symbol it references but never calls. Debian 12
// ships GCC 12, so the loader refuses the library. Marking that version requirement weak
// (VER_FLG_WEAK in .gnu.version_r) lets it load; where the system libstdc++ already
// provides the version, nothing is changed.
using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class WeakenGlibcxxRequirement : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 2;

    [Required] public string LibraryPath { get; set; } = "";
    [Required] public string VersionName { get; set; } = "";
    public string SystemLibraries { get; set; } = "";

    public override bool Execute()
    {
        if (!File.Exists(LibraryPath))
        {
            Log.LogMessage(MessageImportance.Low, "CeDsl: {0} not present, nothing to patch.", LibraryPath);
            return true;
        }
        if (SystemProvides(VersionName))
        {
            Log.LogMessage(MessageImportance.Low, "CeDsl: system libstdc++ provides {0}; {1} left as is.", VersionName, LibraryPath);
            return true;
        }
        try
        {
            byte[] image = File.ReadAllBytes(LibraryPath);
            switch (Weaken(image, VersionName))
            {
                case PatchResult.Patched:
                    string temporary = LibraryPath + ".cedsl-tmp";
                    File.WriteAllBytes(temporary, image);
                    // Rename rather than overwrite: the output copy may be a hard link into the
                    // NuGet cache, which must stay untouched.
                    File.Replace(temporary, LibraryPath, null);
                    Log.LogMessage(MessageImportance.Normal, "CeDsl: marked {0} weak in {1}.", VersionName, LibraryPath);
                    break;
                case PatchResult.AlreadyWeak:
                    Log.LogMessage(MessageImportance.Low, "CeDsl: {0} already weak in {1}.", VersionName, LibraryPath);
                    break;
                case PatchResult.NotRequired:
                    Log.LogMessage(MessageImportance.Low, "CeDsl: {1} does not require {0}.", VersionName, LibraryPath);
                    break;
            }
            return true;
        }
        catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
        {
            Log.LogError("CeDsl: cannot mark {0} weak in {1}: {2}", VersionName, LibraryPath, e.Message);
            return false;
        }
    }

    private bool SystemProvides(string version)
    {
        byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
        foreach (string path in SystemLibraries.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
        {
            if (File.Exists(path) && IndexOf(File.ReadAllBytes(path), needle) >= 0)
                return true;
        }
        return false;
    }

    private enum PatchResult { NotRequired, AlreadyWeak, Patched }

    private static PatchResult Weaken(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("only little-endian ELF64 is supported");

        ulong sectionTable = U64(elf, 0x28);
        int entrySize = U16(elf, 0x3A), count = U16(elf, 0x3C);
        for (int s = 0; s < count; s++)
        {
            int header = checked((int)sectionTable + s * entrySize);
            if (U32(elf, header + 4) != ShtGnuVerneed) continue;

            int offset = checked((int)U64(elf, header + 24));
            int strings = checked((int)U64(elf, checked((int)sectionTable + (int)U32(elf, header + 40) * entrySize) + 24));
            int needed = (int)U32(elf, header + 44);
            int verneed = offset;
            for (int n = 0; n < needed; n++)
            {
                int auxCount = U16(elf, verneed + 2);
                int aux = verneed + (int)U32(elf, verneed + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    if (CString(elf, strings + (int)U32(elf, aux + 8)) == version)
                    {
                        ushort flags = (ushort)U16(elf, aux + 4);
                        if ((flags & VerFlgWeak) != 0) return PatchResult.AlreadyWeak;
                        flags |= VerFlgWeak;
                        elf[aux + 4] = (byte)flags;
                        elf[aux + 5] = (byte)(flags >> 8);
                        return PatchResult.Patched;
                    }
                    aux += (int)U32(elf, aux + 12);
                }
                verneed += (int)U32(elf, verneed + 12);
            }
        }
        return PatchResult.NotRequired;
    }

    private static int U16(byte[] b, int at) => b[at] | b[at + 1] << 8;
    private static uint U32(byte[] b, int at) => BitConverter.ToUInt32(b, at);
    private static ulong U64(byte[] b, int at) => BitConverter.ToUInt64(b, at);

    private static string CString(byte[] b, int at)
    {
        int end = Array.IndexOf(b, (byte)0, at);
        return Encoding.ASCII.GetString(b, at, end - at);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }
}
