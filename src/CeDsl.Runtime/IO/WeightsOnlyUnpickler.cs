using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace CeDsl.IO;

/// <summary>A Python global a pickle names (<c>module.name</c>), one of those <see cref="WeightsOnlyUnpickler"/> allows.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A Python tuple.</summary>
internal sealed record PickleTuple(object?[] Items);

/// <summary>A Python dict (also an OrderedDict): insertion-ordered, assignment overwrites.</summary>
internal sealed class PickleDict
{
    public OrderedDictionary<object, object?> Items { get; } = new();
}

/// <summary>
/// A pickle reader that builds only plain values (None, bool, int, float, str, bytes, tuple, list, dict) and
/// what its caller builds from the globals the caller allows (REDUCE), as PyTorch's
/// <c>torch.load(weights_only=True)</c> does. It never resolves a global by name into code: a global outside
/// the list, and the opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, ...), stop the load with an error
/// that names them, before anything further is read.
/// </summary>
/// <remarks>
/// Why not TorchSharp.PyBridge: its unpickler is Razorvine.Pickle, which turns ANY global into a
/// dictionary-building stand-in through a process-wide constructor registry and cannot be told to refuse one.
/// </remarks>
internal sealed class WeightsOnlyUnpickler
{
    private readonly byte[] _data;
    private readonly string _source;
    private readonly IReadOnlySet<string> _allowedGlobals;
    private readonly Func<PickleGlobal, object?[], object> _reduce;
    private readonly Func<object?, object> _persistentLoad;
    private readonly Dictionary<long, object?> _memo = [];
    private readonly Stack<List<object?>> _marks = new();
    private List<object?> _stack = [];
    private int _position;

    /// <param name="data">The pickle.</param>
    /// <param name="source">Names the pickle in errors (e.g. "'model.pth', entry archive/data.pkl").</param>
    /// <param name="allowedGlobals">The <c>module.name</c> of every global the pickle may name.</param>
    /// <param name="reduce">Builds the value of an allowed global called with the given arguments.</param>
    /// <param name="persistentLoad">Resolves a persistent id (BINPERSID).</param>
    public WeightsOnlyUnpickler(byte[] data, string source, IReadOnlySet<string> allowedGlobals,
        Func<PickleGlobal, object?[], object> reduce, Func<object?, object> persistentLoad)
    {
        _data = data;
        _source = source;
        _allowedGlobals = allowedGlobals;
        _reduce = reduce;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Reads the pickle up to its STOP and returns the object it holds.</summary>
    /// <exception cref="InvalidDataException">A global or an opcode outside the allowed set, or a damaged pickle.</exception>
    public object? Load()
    {
        while (true)
        {
            int at = _position;
            byte opcode = ReadByte();
            switch (opcode)
            {
                case 0x80: ReadByte(); break;                                   // PROTO
                case 0x95: Read(8); break;                                      // FRAME: a length hint
                case (byte)'.': return Pop();                                   // STOP
                case (byte)'(': _marks.Push(_stack); _stack = []; break;        // MARK
                case (byte)'0': Pop(); break;                                   // POP
                case (byte)'N': Push(null); break;                              // NONE
                case 0x88: Push(true); break;                                   // NEWTRUE
                case 0x89: Push(false); break;                                  // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break;                  // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break; // BININT2
                case 0x8a: Push(Long(Read(ReadByte()), at)); break;             // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break; // BINFLOAT
                case (byte)'X': Push(Utf8(Read(Length32()), at)); break;        // BINUNICODE
                case 0x8c: Push(Utf8(Read(ReadByte()), at)); break;             // SHORT_BINUNICODE
                case (byte)'T': Push(Encoding.Latin1.GetString(Read(Length32()))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Read(ReadByte()))); break; // SHORT_BINSTRING
                case (byte)'B': Push(Read(Length32()).ToArray()); break;        // BINBYTES
                case (byte)'C': Push(Read(ReadByte()).ToArray()); break;        // SHORT_BINBYTES
                case (byte)'}': Push(new PickleDict()); break;                  // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break;               // EMPTY_LIST
                case (byte)')': Push(new PickleTuple([])); break;               // EMPTY_TUPLE
                case (byte)'d': Push(SetItems(new PickleDict(), PopMark(at), at)); break; // DICT
                case (byte)'l': Push(PopMark(at)); break;                       // LIST
                case (byte)'t': Push(new PickleTuple([.. PopMark(at)])); break; // TUPLE
                case 0x85: Push(new PickleTuple([Pop()])); break;               // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; } // TUPLE3
                case (byte)'a': { var item = Pop(); List(Top(), at).Add(item); break; } // APPEND
                case (byte)'e': { var items = PopMark(at); List(Top(), at).AddRange(items); break; } // APPENDS
                case (byte)'s': { var value = Pop(); var key = Pop(); SetItems(Dict(Top(), at), [key, value], at); break; } // SETITEM
                case (byte)'u': { var items = PopMark(at); SetItems(Dict(Top(), at), items, at); break; } // SETITEMS
                case (byte)'h': Push(Memo(ReadByte(), at)); break;              // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)), at)); break; // LONG_BINGET
                case (byte)'q': _memo[ReadByte()] = Top(); break;               // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Read(4))] = Top(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Top(); break;                   // MEMOIZE
                case (byte)'c': Push(Global(ReadLine(at), ReadLine(at), at)); break; // GLOBAL
                case 0x93: { var name = Pop(); var module = Pop(); Push(Global(Text(module, at), Text(name, at), at)); break; } // STACK_GLOBAL
                case (byte)'R': Push(Call(at)); break;                          // REDUCE
                case (byte)'b': Build(at); break;                               // BUILD
                case (byte)'Q': Push(_persistentLoad(Pop())); break;            // BINPERSID
                default: throw Refused(at, $"the pickle opcode {OpcodeName(opcode)}, which a weights-only load does not run");
            }
        }
    }

    private object Global(string module, string name, int at)
    {
        var global = new PickleGlobal(module, name);
        if (!_allowedGlobals.Contains(global.FullName))
            throw Refused(at, $"the Python global '{global.FullName}'; a weights-only load allows only tensors, storages, " +
                "ordered dicts and plain values (None, bool, int, float, str, bytes, tuple, list, dict)");
        return global;
    }

    private object Call(int at)
    {
        var arguments = Pop();
        var callable = Pop();
        if (callable is not PickleGlobal global)
            throw Refused(at, $"a call of a {TypeName(callable)}, not of an allowed global");
        if (arguments is not PickleTuple tuple)
            throw Invalid(at, $"the arguments of {global.FullName} are a {TypeName(arguments)}, not a tuple");
        return _reduce(global, tuple.Items);
    }

    /// <summary>BUILD: only an OrderedDict's attributes (a state dict's <c>_metadata</c>), which are kept out of the result.</summary>
    private void Build(int at)
    {
        var state = Pop();
        var target = Top();
        if (target is not PickleDict || state is not (PickleDict or null))
            throw Refused(at, $"setting the state of a {TypeName(target)} from a {TypeName(state)} (BUILD); only an OrderedDict's attributes are accepted");
    }

    private PickleDict SetItems(PickleDict dict, List<object?> items, int at)
    {
        if (items.Count % 2 != 0)
            throw Invalid(at, "a dict is given an odd number of keys and values");
        for (int i = 0; i < items.Count; i += 2)
        {
            if (items[i] is not (string or long or bool or double or PickleTuple))
                throw Invalid(at, $"a dict key is a {TypeName(items[i])}");
            dict.Items[items[i]!] = items[i + 1];
        }
        return dict;
    }

    private static long Long(ReadOnlySpan<byte> bytes, int at)
    {
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue
            ? (long)value
            : throw new InvalidDataException($"an integer of {bytes.Length} bytes at byte {at} does not fit in 64 bits");
    }

    private object? Memo(long index, int at) =>
        _memo.TryGetValue(index, out var value) ? value : throw Invalid(at, $"memo entry {index} is read before it is written");

    private static List<object?> List(object? value, int at) =>
        value as List<object?> ?? throw new InvalidDataException($"APPEND at byte {at} to a {TypeName(value)}, not a list");

    private static PickleDict Dict(object? value, int at) =>
        value as PickleDict ?? throw new InvalidDataException($"SETITEM at byte {at} on a {TypeName(value)}, not a dict");

    private string Text(object? value, int at) => value as string ?? throw Invalid(at, $"a global's name is a {TypeName(value)}");

    private string Utf8(ReadOnlySpan<byte> bytes, int at)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Invalid(at, "a string is not valid UTF-8");
        }
    }

    private string ReadLine(int at)
    {
        int end = Array.IndexOf(_data, (byte)'\n', _position);
        if (end < 0)
            throw Invalid(at, "the pickle ends inside a global's name");
        string line = Encoding.UTF8.GetString(_data, _position, end - _position);
        _position = end + 1;
        return line;
    }

    private int Length32()
    {
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(Read(4));
        return length <= int.MaxValue ? (int)length : throw Invalid(_position - 4, $"a length of {length} bytes");
    }

    private byte ReadByte() => Read(1)[0];

    private ReadOnlySpan<byte> Read(int count)
    {
        if (count > _data.Length - _position)
            throw Invalid(_position, "the pickle ends early (truncated file?)");
        var span = _data.AsSpan(_position, count);
        _position += count;
        return span;
    }

    private void Push(object? value) => _stack.Add(value);

    private object? Top() => _stack.Count > 0 ? _stack[^1] : throw Invalid(_position, "the pickle's stack is empty");

    private object? Pop()
    {
        var value = Top();
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private List<object?> PopMark(int at)
    {
        if (!_marks.TryPop(out var below))
            throw Invalid(at, "a MARK is missing");
        var items = _stack;
        _stack = below;
        return items;
    }

    /// <summary>How Python names the type of a value built by this reader, for error messages.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        PickleTuple => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleGlobal global => global.FullName,
        _ => value.GetType().Name,
    };

    private InvalidDataException Refused(int at, string what) =>
        new($"{_source} was refused: at byte {at} it names {what}. Nothing was loaded and nothing in the file was run.");

    private InvalidDataException Invalid(int at, string problem) => new($"{_source} is not a valid pickle: {problem} (byte {at}).");

    private static string OpcodeName(byte opcode) => opcode switch
    {
        (byte)'i' => "INST",
        (byte)'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        (byte)'P' => "PERSID",
        (byte)'I' => "INT",
        (byte)'L' => "LONG",
        (byte)'S' => "STRING",
        (byte)'V' => "UNICODE",
        (byte)'F' => "FLOAT",
        (byte)'p' => "PUT",
        (byte)'g' => "GET",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x82 or 0x83 or 0x84 => "EXT",
        _ => $"0x{opcode:x2}",
    };
}
