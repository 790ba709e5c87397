// netstandard2.0 lacks the types the compiler needs for records and init accessors, and for
// interpolated string handlers (IndentedWriter writes interpolated lines without building them as strings).
namespace System.Runtime.CompilerServices
{
    internal static class IsExternalInit;

    [AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, AllowMultiple = false, Inherited = false)]
    internal sealed class InterpolatedStringHandlerAttribute : Attribute;

    [AttributeUsage(AttributeTargets.Parameter, AllowMultiple = false, Inherited = false)]
    internal sealed class InterpolatedStringHandlerArgumentAttribute(params string[] arguments) : Attribute
    {
        public string[] Arguments { get; } = arguments;
    }
}
